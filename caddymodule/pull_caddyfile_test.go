package caddymodule

import (
	"strconv"
	"strings"
	"testing"
)

// TestAdaptPullOptionErrors checks that a bad value for a pull hardening
// option fails at adapt time, naming its Caddyfile line.
func TestAdaptPullOptionErrors(t *testing.T) {
	caddyfile := func(option string) string {
		return "example.com {\n\tlivefyre {\n\t\tnetwork example.fyre.co\n\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n" +
			"\t\tpull https://example.com/livefyre/pull/{id} {\n\t\t\tupstream http://127.0.0.1:3000/api/users/{id}\n" +
			"\t\t\t" + option + "\n\t\t}\n\t}\n}\n" // the option is on line 7
	}
	tests := []struct {
		option string
		want   string
	}{
		{"dial_timeout soon", "is not a duration"},
		{"dial_timeout -1s", "is not a duration"},
		{"dial_timeout", "dial_timeout needs a value"},
		{"allow_ips", "allow_ips needs one or more IP addresses"},
		{"allow_ips 10.0.0.0/8 livefyre.example", `"livefyre.example" is not an IP address or CIDR range`},
		{"allow_ips 10.0.0.0/40", `"10.0.0.0/40" is not an IP address or CIDR range`},
		{"max_token_failures", "max_token_failures needs a value"},
		{"max_token_failures 10", "like 10/m"},
		{"max_token_failures 0/m", "like 10/m"},
		{"max_token_failures 10/d", "the unit must be s, m or h"},
		{"max_token_failures 10/m 20/h", "max_token_failures takes one value"},
		{"cache forever", "is not a duration"},
		{"cache -1m", "is not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.option, func(t *testing.T) {
			_, err := adapt(t, caddyfile(tt.option))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("adapt error %v, want one containing %q", err, tt.want)
			}
			if at := "Caddyfile:" + strconv.Itoa(7); !strings.Contains(err.Error(), at) {
				t.Errorf("error %q does not name %s", err, at)
			}
		})
	}
}
