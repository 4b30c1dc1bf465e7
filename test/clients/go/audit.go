package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/vault/api"
)

// auditChecks: a file audit device through Sys().EnableAuditWithOptions, and what it records.
func auditChecks(s *suite) {
	sys := s.root.Sys()
	path := os.Getenv("COFRE_AUDIT_FILE")
	const secretValue = "audit-probe-value-0d1f"
	var token string
	s.check("sys/audit: enable a file device", func() error {
		if path == "" {
			return fmt.Errorf("COFRE_AUDIT_FILE is not set")
		}
		return sys.EnableAuditWithOptions("go-file", &api.EnableAuditOptions{Type: "file", Description: "go client", Options: map[string]string{"file_path": path}})
	})
	s.check("sys/audit: list shows the device with its options", func() error {
		devices, err := sys.ListAudit()
		if err != nil {
			return err
		}
		d := devices["go-file/"]
		if d == nil {
			return fmt.Errorf("go-file/ not listed: %v", devices)
		}
		return all(eq("type", d.Type, "file"), eq("description", d.Description, "go client"), eq("path", d.Path, "go-file/"),
			eq("file_path", d.Options["file_path"], path))
	})
	s.check("audit: the file records a token's request and response with the token and values hashed", func() error {
		t, err := s.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}, TTL: "10m"})
		if err != nil {
			return err
		}
		token = t.Auth.ClientToken
		if _, err := s.as(token).KVv2("go-kv2").Put(s.ctx, "audit/probe", map[string]any{"v": secretValue}); err != nil {
			return err
		}
		hashed, err := sys.AuditHash("go-file", token)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(raw), token) || strings.Contains(string(raw), secretValue) {
			return fmt.Errorf("the audit file holds the token or the value in clear")
		}
		kinds := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var entry struct {
				Type string `json:"type"`
				Auth struct {
					ClientToken string `json:"client_token"`
				} `json:"auth"`
				Request struct {
					Operation string         `json:"operation"`
					Path      string         `json:"path"`
					Data      map[string]any `json:"data"`
				} `json:"request"`
			}
			if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
				return fmt.Errorf("an audit line is not JSON: %v", err)
			}
			if entry.Request.Path != "go-kv2/data/audit/probe" {
				continue
			}
			if err := all(eq("client_token", entry.Auth.ClientToken, hashed), eq("operation", entry.Request.Operation, "create"),
				truth(strings.HasPrefix(hashed, "hmac-sha256:"), "audit-hash %q", hashed)); err != nil {
				return err
			}
			data, _ := entry.Request.Data["data"].(map[string]any)
			v, _ := data["v"].(string)
			if err := truth(strings.HasPrefix(v, "hmac-sha256:"), "request value not hashed: %q", v); err != nil {
				return err
			}
			kinds[entry.Type] = true
		}
		return truth(kinds["request"] && kinds["response"], "want a request and a response entry, got %v", kinds)
	})
	s.check("sys/audit: disable the device", func() error {
		if err := sys.DisableAudit("go-file"); err != nil {
			return err
		}
		devices, err := sys.ListAudit()
		return all(err, truth(devices["go-file/"] == nil, "still listed"))
	})
}
