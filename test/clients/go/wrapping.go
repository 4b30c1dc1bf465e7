package main

import (
	"fmt"

	"github.com/hashicorp/vault/api"
)

// wrapped returns a client of the same server, with the same token, that asks for every answer wrapped for ttl,
// as the client's SetWrappingLookupFunc (and Vault's CLI -wrap-ttl) does.
func (s *suite) wrapped(ttl string) *api.Client {
	c := s.as(s.root.Token())
	c.SetWrappingLookupFunc(func(operation, path string) string { return ttl })
	return c
}

// wrappingChecks: response wrapping through SetWrappingLookupFunc, Logical().Unwrap and sys/wrapping/*, and the
// cubbyhole engine the wrapped answers live in.
func wrappingChecks(s *suite) {
	secret := map[string]any{"password": "wrapped-pw-1", "user": "app"}
	s.check("wrapping: a read asked wrapped answers wrap_info only; Unwrap gives the original once", func() error {
		if err := s.root.Sys().Mount("go-wrap", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("go-wrap/app", secret); err != nil {
			return err
		}
		w, err := s.wrapped("5m").Logical().Read("go-wrap/app")
		if err != nil {
			return err
		}
		if w == nil || w.WrapInfo == nil {
			return fmt.Errorf("no wrap_info: %+v", w)
		}
		info := w.WrapInfo
		if err := all(eq("data", len(w.Data), 0), eq("ttl", info.TTL, 300), eq("creation_path", info.CreationPath, "go-wrap/app"),
			truth(info.Token != "" && info.Accessor != "", "token or accessor missing: %+v", info),
			eq("wrapped_accessor", info.WrappedAccessor, "")); err != nil {
			return err
		}
		got, err := s.root.Logical().Unwrap(info.Token)
		if err != nil {
			return err
		}
		_, again := s.root.Logical().Unwrap(info.Token)
		return all(eq("unwrapped data", got.Data, secret), status("second unwrap", again, 400))
	})
	s.check("sys/wrapping/wrap, lookup, rewrap: wrap any data; rewrap ends the old token; the new one unwraps it", func() error {
		w, err := s.wrapped("10m").Logical().Write("sys/wrapping/wrap", map[string]any{"k": "v-wrap-2"})
		if err != nil {
			return err
		}
		if w == nil || w.WrapInfo == nil {
			return fmt.Errorf("no wrap_info: %+v", w)
		}
		look, err := s.as("").Logical().Write("sys/wrapping/lookup", map[string]any{"token": w.WrapInfo.Token})
		if err != nil {
			return err
		}
		if err := all(eq("creation_path", look.Data["creation_path"], "sys/wrapping/wrap"), eq("creation_ttl", look.Data["creation_ttl"], jsonNumber(600))); err != nil {
			return err
		}
		re, err := s.root.Logical().Write("sys/wrapping/rewrap", map[string]any{"token": w.WrapInfo.Token})
		if err != nil {
			return err
		}
		if re == nil || re.WrapInfo == nil {
			return fmt.Errorf("rewrap has no wrap_info: %+v", re)
		}
		_, errOld := s.root.Logical().Unwrap(w.WrapInfo.Token)
		got, err := s.root.Logical().Unwrap(re.WrapInfo.Token)
		if err != nil {
			return err
		}
		return all(status("old token after rewrap", errOld, 400), eq("rewrap ttl", re.WrapInfo.TTL, 600),
			eq("rewrap creation_path", re.WrapInfo.CreationPath, "sys/wrapping/wrap"), eq("data", got.Data, map[string]any{"k": "v-wrap-2"}))
	})
	s.check("wrapping: a wrapped token create names the token in wrapped_accessor; its holder unwraps it with no token of its own", func() error {
		w, err := s.wrapped("5m").Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		if w == nil || w.WrapInfo == nil || w.Auth != nil {
			return fmt.Errorf("not wrapped: %+v", w)
		}
		// The client sends the wrapping token as its own token when it has none.
		holder := s.as("")
		got, err := holder.Logical().Unwrap(w.WrapInfo.Token)
		if err != nil {
			return err
		}
		look, err := s.root.Auth().Token().Lookup(got.Auth.ClientToken)
		if err != nil {
			return err
		}
		return all(eq("accessor", got.Auth.Accessor, w.WrapInfo.WrappedAccessor), eq("looked up accessor", look.Data["accessor"], w.WrapInfo.WrappedAccessor),
			eq("policies", got.Auth.Policies, []string{"default", "go-reader"}))
	})
	s.check("sys/wrapping/unwrap: an unknown token is 400", func() error {
		_, err := s.root.Logical().Unwrap("cvs.not-a-wrapping-token")
		return status("unwrap", err, 400)
	})

	s.check("cubbyhole: a token writes, reads and lists its own cubbyhole; another token sees none of it", func() error {
		mk := func() (*api.Client, error) {
			t, err := s.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}, TTL: "10m"})
			if err != nil {
				return nil, err
			}
			return s.as(t.Auth.ClientToken), nil
		}
		a, err := mk()
		if err != nil {
			return err
		}
		b, err := mk()
		if err != nil {
			return err
		}
		if _, err := a.Logical().Write("cubbyhole/app/key", map[string]any{"v": "cubby-a"}); err != nil {
			return err
		}
		mine, err := a.Logical().Read("cubbyhole/app/key")
		if err != nil {
			return err
		}
		list, err := a.Logical().List("cubbyhole/app")
		if err != nil {
			return err
		}
		theirs, err := b.Logical().Read("cubbyhole/app/key")
		if err != nil {
			return err
		}
		theirList, err := b.Logical().List("cubbyhole/app")
		if err != nil {
			return err
		}
		if err := all(eq("read", mine.Data, map[string]any{"v": "cubby-a"}), eq("list", stringsOf(list.Data["keys"]), []string{"key"}),
			truth(theirs == nil, "another token reads it: %+v", theirs), truth(theirList == nil, "another token lists it: %+v", theirList)); err != nil {
			return err
		}
		if _, err := a.Logical().Delete("cubbyhole/app/key"); err != nil {
			return err
		}
		gone, err := a.Logical().Read("cubbyhole/app/key")
		return all(err, truth(gone == nil, "deleted entry still read: %+v", gone))
	})
	s.check("cubbyhole: cannot be disabled or mounted again (400)", func() error {
		return all(status("unmount", s.root.Sys().Unmount("cubbyhole"), 400),
			status("mount", s.root.Sys().Mount("go-cubby", &api.MountInput{Type: "cubbyhole"}), 400))
	})
}
