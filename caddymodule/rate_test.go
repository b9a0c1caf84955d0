package caddymodule

import (
	"testing"
	"time"
)

// TestPerUnit pins the grammar both "N/unit" settings share, and the exact
// error text users see for each.
func TestPerUnit(t *testing.T) {
	tests := []struct {
		setting perUnit
		in      string
		n       float64
		per     time.Duration
		err     string
	}{
		{rateSetting, "20/s", 20, time.Second, ""},
		{rateSetting, "20", 20, time.Second, ""},
		{rateSetting, "0.5/m", 0.5, time.Minute, ""},
		{rateSetting, " 3 / h ", 3, time.Hour, ""},
		{rateSetting, "0/s", 0, 0, `rate "0/s": want a positive number of pings per s, m or h, like 20/s`},
		{rateSetting, "NaN/s", 0, 0, `rate "NaN/s": want a positive number of pings per s, m or h, like 20/s`},
		{rateSetting, "fast", 0, 0, `rate "fast": want a positive number of pings per s, m or h, like 20/s`},
		{rateSetting, "20/d", 0, 0, `rate "20/d": the unit must be s, m or h`},
		{rateSetting, "20/", 0, 0, `rate "20/": the unit must be s, m or h`},
		{failureBudgetSetting, "10/m", 10, time.Minute, ""},
		{failureBudgetSetting, "1/s", 1, time.Second, ""},
		{failureBudgetSetting, "500/h", 500, time.Hour, ""},
		{failureBudgetSetting, "10", 0, 0, `max_token_failures "10": want a positive whole number of failures per s, m or h, like 10/m`},
		{failureBudgetSetting, "1.5/m", 0, 0, `max_token_failures "1.5/m": want a positive whole number of failures per s, m or h, like 10/m`},
		{failureBudgetSetting, "-1/m", 0, 0, `max_token_failures "-1/m": want a positive whole number of failures per s, m or h, like 10/m`},
		{failureBudgetSetting, "10/min", 0, 0, `max_token_failures "10/min": the unit must be s, m or h`},
	}
	for _, tt := range tests {
		n, per, err := tt.setting.parse(tt.in)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s %q: error %v, want %q", tt.setting.setting, tt.in, err, tt.err)
			}
		case err != nil || n != tt.n || per != tt.per:
			t.Errorf("%s %q = %v, %v, %v; want %v, %v", tt.setting.setting, tt.in, n, per, err, tt.n, tt.per)
		}
	}
}

func TestParseRate(t *testing.T) {
	lim, perSecond, err := parseRate("30/m")
	if err != nil || perSecond != 0.5 || float64(lim) != 0.5 {
		t.Errorf("parseRate(30/m) = %v, %v, %v; want 0.5 per second", lim, perSecond, err)
	}
	if _, _, err := parseRate("30/d"); err == nil {
		t.Error("parseRate(30/d) succeeded")
	}
}
