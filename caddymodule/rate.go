package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// perUnit describes a setting written "N/s", "N/m" or "N/h": N things per
// second, minute or hour. The global rate and a pull block's
// max_token_failures share the grammar and the wording of its errors.
type perUnit struct {
	setting string // names the setting in errors
	counts  string // what N is, in the error for a bad N
	example string
	whole   bool // N must be a whole number
	bare    bool // a bare N, without a unit, counts per second
}

var (
	rateSetting          = perUnit{setting: "rate", counts: "a positive number of pings", example: "20/s", bare: true}
	failureBudgetSetting = perUnit{setting: "max_token_failures", counts: "a positive whole number of failures", example: "10/m", whole: true}
)

// parse returns N and the period it counts over. Spaces around N and the
// unit are ignored.
func (u perUnit) parse(s string) (float64, time.Duration, error) {
	num, unit, found := strings.Cut(s, "/")
	num = strings.TrimSpace(num)
	var n float64
	var err error
	if u.whole {
		var i int
		i, err = strconv.Atoi(num)
		n = float64(i)
	} else {
		n, err = strconv.ParseFloat(num, 64)
	}
	if err != nil || !(n > 0) || (!found && !u.bare) {
		return 0, 0, fmt.Errorf("%s %q: want %s per s, m or h, like %s", u.setting, s, u.counts, u.example)
	}
	if !found {
		return n, time.Second, nil
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return n, time.Second, nil
	case "m":
		return n, time.Minute, nil
	case "h":
		return n, time.Hour, nil
	}
	return 0, 0, fmt.Errorf("%s %q: the unit must be s, m or h", u.setting, s)
}

// parseFailureBudget reads a pull block's max_token_failures.
func parseFailureBudget(s string) (int, time.Duration, error) {
	n, per, err := failureBudgetSetting.parse(s)
	return int(n), per, err
}
