package main

import (
	"github.com/hashicorp/vault/api"
)

// mountChecks: secrets engines enabled with the client's defaults, listed, tuned and disabled.
func mountChecks(s *suite) {
	sys := s.root.Sys()
	s.check("sys/mounts: enable kv with the client's default MountInput", func() error {
		// The zero MountInput sends every field: empty TTL strings, null options, local and seal_wrap false.
		return sys.Mount("go-mount", &api.MountInput{Type: "kv"})
	})
	s.check("sys/mounts: list shows the mount with its type, accessor and config", func() error {
		mounts, err := sys.ListMounts()
		if err != nil {
			return err
		}
		m, ok := mounts["go-mount/"]
		if !ok {
			return truth(false, "go-mount/ not listed")
		}
		return all(eq("type", m.Type, "kv"), truth(m.Accessor != "", "no accessor"),
			truth(m.Config.DefaultLeaseTTL == 0 && m.Config.MaxLeaseTTL == 0, "ttls %d/%d", m.Config.DefaultLeaseTTL, m.Config.MaxLeaseTTL),
			truth(mounts["sys/"] != nil, "sys/ not listed"))
	})
	s.check("sys/mounts/:path: GetMount reads one mount", func() error {
		m, err := sys.GetMount("go-mount")
		if err != nil {
			return err
		}
		return eq("type", m.Type, "kv")
	})
	s.check("sys/mounts/:path/tune: TuneMount sends the whole config", func() error {
		desc := "tuned by the Go client"
		if err := sys.TuneMount("go-mount", api.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h", Description: &desc}); err != nil {
			return err
		}
		cfg, err := sys.MountConfig("go-mount")
		if err != nil {
			return err
		}
		m, err := sys.GetMount("go-mount")
		if err != nil {
			return err
		}
		// MountConfigOutput has no description field; Vault's tune answer carries it all the same.
		raw, err := s.root.Logical().Read("sys/mounts/go-mount/tune")
		if err != nil {
			return err
		}
		return all(eq("default_lease_ttl", cfg.DefaultLeaseTTL, 3600), eq("max_lease_ttl", cfg.MaxLeaseTTL, 7200),
			eq("tune description", raw.Data["description"], desc), eq("listed description", m.Description, desc))
	})
	s.check("sys/mounts/:path/tune: a partial tune changes one field only", func() error {
		ttl := "30m"
		if err := sys.TuneMountAllowNil("go-mount", api.TuneMountConfigInput{DefaultLeaseTTL: &ttl}); err != nil {
			return err
		}
		cfg, err := sys.MountConfig("go-mount")
		if err != nil {
			return err
		}
		return all(eq("default_lease_ttl", cfg.DefaultLeaseTTL, 1800), eq("max_lease_ttl kept", cfg.MaxLeaseTTL, 7200))
	})
	s.check(`sys/mounts/:path/tune: "system" resets a TTL to the system default`, func() error {
		system := "system"
		if err := sys.TuneMountAllowNil("go-mount", api.TuneMountConfigInput{DefaultLeaseTTL: &system, MaxLeaseTTL: &system}); err != nil {
			return err
		}
		cfg, err := sys.MountConfig("go-mount")
		if err != nil {
			return err
		}
		// Vault answers the effective TTLs: the system's 768 hours when the mount sets none.
		return all(eq("default_lease_ttl", cfg.DefaultLeaseTTL, 768*3600), eq("max_lease_ttl", cfg.MaxLeaseTTL, 768*3600))
	})
	s.check("sys/mounts: enable with config TTLs and the kv-v2 type", func() error {
		in := &api.MountInput{Type: "kv-v2", Description: "versioned", Config: api.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h"}}
		if err := sys.Mount("go-mount-ttl", in); err != nil {
			return err
		}
		defer sys.Unmount("go-mount-ttl")
		m, err := sys.GetMount("go-mount-ttl")
		if err != nil {
			return err
		}
		return all(eq("type", m.Type, "kv"), eq("options", m.Options, map[string]string{"version": "2"}),
			eq("default_lease_ttl", m.Config.DefaultLeaseTTL, 3600), eq("max_lease_ttl", m.Config.MaxLeaseTTL, 7200),
			eq("description", m.Description, "versioned"))
	})
	s.check("sys/mounts: a second mount at a taken path is refused with 400", func() error {
		return status("mount again", sys.Mount("go-mount", &api.MountInput{Type: "kv"}), 400)
	})
	s.check("sys/mounts: an unknown engine type is refused with 400", func() error {
		return status("mount nope", sys.Mount("go-nope", &api.MountInput{Type: "no-such-engine"}), 400)
	})
	s.check("sys/mounts/:path: disable removes the mount and its data", func() error {
		if _, err := s.root.Logical().Write("go-mount/x", map[string]any{"a": "b"}); err != nil {
			return err
		}
		if err := sys.Unmount("go-mount"); err != nil {
			return err
		}
		mounts, err := sys.ListMounts()
		if err != nil {
			return err
		}
		if err := truth(mounts["go-mount/"] == nil, "still listed"); err != nil {
			return err
		}
		if err := sys.Mount("go-mount", &api.MountInput{Type: "kv"}); err != nil {
			return err
		}
		defer sys.Unmount("go-mount")
		sec, err := s.root.Logical().Read("go-mount/x")
		return all(err, truth(sec == nil, "data survived the unmount: %v", sec))
	})
}
