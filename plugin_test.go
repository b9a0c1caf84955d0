package caddylivefyre

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/caddy-livefyre/caddy-livefyre"

// deps lists the packages pkg imports, directly or not, itself included;
// test files are not part of it.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// The plugin, which xcaddy builds into production binaries, carries no
// test tool: neither the Livefyre emulator nor its command. Only the dev
// binary ./cmd/caddy adds them.
func TestPluginImportsNoEmulator(t *testing.T) {
	for _, p := range deps(t, module) {
		if p == module+"/livefyretest" || strings.HasPrefix(p, module+"/livefyretest/") {
			t.Errorf("the plugin imports %s", p)
		}
	}
	if !slices.Contains(deps(t, module+"/cmd/caddy"), module+"/livefyretest/emulatorcmd") {
		t.Errorf("./cmd/caddy does not import livefyretest/emulatorcmd: `caddy livefyre emulator` is gone from the dev binary")
	}
}

// operator reaches the livefyre app through its App interface only, and
// caddymodule knows nothing of the admin API's routes or commands.
func TestOperatorAndCaddymoduleImportNeitherOther(t *testing.T) {
	if slices.Contains(deps(t, module+"/operator"), module+"/caddymodule") {
		t.Error("operator imports caddymodule")
	}
	if slices.Contains(deps(t, module+"/caddymodule"), module+"/operator") {
		t.Error("caddymodule imports operator")
	}
}
