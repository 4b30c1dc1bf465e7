package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// sysToolChecks: sys/remount, sys/tools, sys/metrics, sys/host-info, ?help=1, the KV v1 to v2 upgrade and sys/step-down.
func sysToolChecks(s *suite) {
	sys := s.root.Sys()
	s.check("sys/remount: Sys().Remount moves a secrets engine with its data; the old path is gone", func() error {
		if err := sys.Mount("go-mv-a", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("go-mv-a/app", map[string]any{"v": "moved"}); err != nil {
			return err
		}
		if err := sys.Remount("go-mv-a", "go-mv-b"); err != nil {
			return err
		}
		got, err := s.root.Logical().Read("go-mv-b/app")
		if err != nil {
			return err
		}
		mounts, err := sys.ListMounts()
		if err != nil {
			return err
		}
		// The client answers a 404 as no secret and no error.
		old, errOld := s.root.Logical().Read("go-mv-a/app")
		return all(truth(got != nil, "nothing at the new path"), eq("data", got.Data, map[string]any{"v": "moved"}),
			truth(mounts["go-mv-a/"] == nil && mounts["go-mv-b/"] != nil, "mounts %v", mounts),
			errOld, truth(old == nil, "still served at the old path: %+v", old))
	})
	s.check("sys/remount: an auth method moves too (auth/a to auth/b) and its users log in at the new path", func() error {
		if err := sys.EnableAuthWithOptions("go-mv-up", &api.EnableAuthOptions{Type: "userpass"}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("auth/go-mv-up/users/carol", map[string]any{"password": "mv-pw-1"}); err != nil {
			return err
		}
		if err := sys.Remount("auth/go-mv-up", "auth/go-mv-up2"); err != nil {
			return err
		}
		login, err := s.as("").Logical().Write("auth/go-mv-up2/login/carol", map[string]any{"password": "mv-pw-1"})
		if err != nil {
			return err
		}
		_, errOld := s.as("").Logical().Write("auth/go-mv-up/login/carol", map[string]any{"password": "mv-pw-1"})
		methods, err := sys.ListAuth()
		if err != nil {
			return err
		}
		return all(eq("username", login.Auth.Metadata["username"], "carol"), truth(errOld != nil, "the old path still logs in"),
			truth(methods["go-mv-up/"] == nil && methods["go-mv-up2/"] != nil, "methods %v", methods))
	})
	s.check("sys/remount: a taken destination and sys/ are refused (400)", func() error {
		if err := sys.Mount("go-mv-c", &api.MountInput{Type: "kv"}); err != nil {
			return err
		}
		_, errTaken := sys.StartRemount("go-mv-b", "go-mv-c")
		_, errSys := sys.StartRemount("sys", "go-sys")
		got, err := s.root.Logical().Read("go-mv-b/app")
		return all(status("taken", errTaken, 400), status("sys", errSys, 400), err, truth(got != nil, "the refused move lost the data"))
	})

	s.check("sys/tools/hash: the SHA-256 of the input, in hex and base64", func() error {
		input := []byte("the quick brown fox")
		sum := sha256.Sum256(input)
		h, err := s.root.Logical().Write("sys/tools/hash/sha2-256", map[string]any{"input": base64.StdEncoding.EncodeToString(input)})
		if err != nil {
			return err
		}
		b, err := s.root.Logical().Write("sys/tools/hash", map[string]any{"input": base64.StdEncoding.EncodeToString(input), "format": "base64"})
		if err != nil {
			return err
		}
		return all(eq("hex", h.Data["sum"], hex.EncodeToString(sum[:])), eq("base64", b.Data["sum"], base64.StdEncoding.EncodeToString(sum[:])))
	})
	s.check("sys/tools/random: as many random bytes as asked, hex and base64, different each time", func() error {
		a, err := s.root.Logical().Write("sys/tools/random/24", map[string]any{"format": "hex"})
		if err != nil {
			return err
		}
		b, err := s.root.Logical().Write("sys/tools/random", map[string]any{"bytes": 40})
		if err != nil {
			return err
		}
		ra, err := hex.DecodeString(fmt.Sprint(a.Data["random_bytes"]))
		if err != nil {
			return err
		}
		rb, err := base64.StdEncoding.DecodeString(fmt.Sprint(b.Data["random_bytes"]))
		if err != nil {
			return err
		}
		c, err := s.root.Logical().Write("sys/tools/random/24", map[string]any{"format": "hex"})
		if err != nil {
			return err
		}
		return all(eq("hex bytes", len(ra), 24), eq("base64 bytes", len(rb), 40), truth(c.Data["random_bytes"] != a.Data["random_bytes"], "the same bytes twice"))
	})

	s.check("sys/metrics: go-metrics JSON by default, Prometheus text with format=prometheus", func() error {
		raw, err := s.root.Logical().ReadRaw("sys/metrics")
		if err != nil {
			return err
		}
		defer raw.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(raw.Body).Decode(&body); err != nil {
			return err
		}
		prom, err := s.root.Logical().ReadRawWithData("sys/metrics", map[string][]string{"format": {"prometheus"}})
		if err != nil {
			return err
		}
		defer prom.Body.Close()
		text, err := io.ReadAll(prom.Body)
		if err != nil {
			return err
		}
		_, errBad := s.root.Logical().ReadRawWithData("sys/metrics", map[string][]string{"format": {"xml"}})
		gauges, _ := body["Gauges"].([]any)
		return all(truth(body["Timestamp"] != nil && body["Counters"] != nil && body["Samples"] != nil, "keys %v", body),
			truth(len(gauges) > 0, "no gauges"), truth(strings.Contains(string(text), "# TYPE "), "not Prometheus text: %.200s", text),
			truth(strings.HasPrefix(prom.Header.Get("Content-Type"), "text/plain"), "content type %q", prom.Header.Get("Content-Type")),
			status("format=xml", errBad, 400))
	})
	s.check("sys/host-info: this machine's host name, CPUs and memory", func() error {
		info, err := s.root.Logical().Read("sys/host-info")
		if err != nil {
			return err
		}
		host, _ := info.Data["host"].(map[string]any)
		memory, _ := info.Data["memory"].(map[string]any)
		cpus, _ := info.Data["cpu"].([]any)
		name, _ := os.Hostname()
		total, _ := memory["total"].(json.Number)
		n, _ := total.Int64()
		return all(eq("hostname", host["hostname"], name), truth(len(cpus) > 0, "no cpu"), truth(n > 0, "memory total %v", memory["total"]),
			truth(info.Data["timestamp"] != nil, "no timestamp"))
	})
	s.check("?help=1: Client.Help describes a mount's path and a sys path, with their OpenAPI; a bad token is refused", func() error {
		h, err := s.root.Help("go-bt/app")
		if err != nil {
			return err
		}
		sh, err := s.root.Help("sys/tools/random")
		if err != nil {
			return err
		}
		kvPaths, _ := h.OpenAPI["paths"].(map[string]any)
		sysPaths, _ := sh.OpenAPI["paths"].(map[string]any)
		_, errBad := s.as("cvs.not-a-token").Help("sys/mounts")
		return all(truth(strings.HasPrefix(h.Help, "Request:        app\nMatching Route: "), "kv help: %.200s", h.Help),
			truth(strings.Contains(h.Help, "## DESCRIPTION"), "kv help without a description: %.300s", h.Help),
			truth(kvPaths["/go-bt/{path}"] != nil, "kv OpenAPI paths %v", keysOf(kvPaths)),
			truth(strings.HasPrefix(sh.Help, "Request:        tools/random\n"), "sys help: %.200s", sh.Help),
			truth(sysPaths["/sys/tools/random/{source}/{urlbytes}"] != nil, "sys OpenAPI paths %v", keysOf(sysPaths)),
			status("help with a bad token", errBad, 403))
	})

	s.check("kv: tuning options.version=2 upgrades a v1 mount in place; its secrets become version 1", func() error {
		if err := sys.Mount("go-up", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("go-up/app/db", map[string]any{"password": "before-upgrade"}); err != nil {
			return err
		}
		if err := sys.TuneMount("go-up", api.MountConfigInput{Options: map[string]string{"version": "2"}}); err != nil {
			return err
		}
		m, err := sys.GetMount("go-up")
		if err != nil {
			return err
		}
		// Vault upgrades in the background and answers a retryable 400 meanwhile; a client waits that out.
		var got *api.KVSecret
		for i := 0; ; i++ {
			got, err = s.root.KVv2("go-up").Get(s.ctx, "app/db")
			if err == nil || i == 100 || !strings.Contains(err.Error(), "Upgrading from non-versioned to versioned data") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		if _, err := s.root.KVv2("go-up").Put(s.ctx, "app/db", map[string]any{"password": "after-upgrade"}); err != nil {
			return err
		}
		downgrade := sys.TuneMount("go-up", api.MountConfigInput{Options: map[string]string{"version": "1"}})
		return all(eq("version option", m.Options["version"], "2"), eq("data", got.Data, map[string]any{"password": "before-upgrade"}),
			eq("version", got.VersionMetadata.Version, 1), status("downgrade", downgrade, 400))
	})

	s.check("sys/step-down: root steps a lone node down, which keeps serving as the active node", func() error {
		if err := sys.StepDown(); err != nil {
			return err
		}
		h, err := sys.Health()
		if err != nil {
			return err
		}
		_, err = s.root.Logical().Read("go-bt/app")
		return all(err, eq("standby", h.Standby, false), eq("sealed", h.Sealed, false))
	})
	s.check("sys/step-down: a token without sudo is refused (403)", func() error {
		t, err := s.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, TTL: "5m"})
		if err != nil {
			return err
		}
		return status("step-down", s.as(t.Auth.ClientToken).Sys().StepDown(), 403)
	})
}
