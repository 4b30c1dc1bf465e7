package main

import (
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"
)

// tokenRoleChecks: batch tokens, token roles with CreateWithRole, auth/token/tidy and revocation by creation path.
func tokenRoleChecks(s *suite) {
	tokens := s.root.Auth().Token()
	const policy = `path "go-bt/*" { capabilities = ["read"] }`

	s.check("auth/token/create: a batch token reads what its policy allows and nothing else, and has no accessor", func() error {
		if err := s.root.Sys().PutPolicy("go-batch", policy); err != nil {
			return err
		}
		if err := s.root.Sys().Mount("go-bt", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("go-bt/app", map[string]any{"v": "batch-read"}); err != nil {
			return err
		}
		t, err := tokens.Create(&api.TokenCreateRequest{Type: "batch", Policies: []string{"go-batch"}, TTL: "10m"})
		if err != nil {
			return err
		}
		b := s.as(t.Auth.ClientToken)
		got, err := b.Logical().Read("go-bt/app")
		if err != nil {
			return err
		}
		_, errWrite := b.Logical().Write("go-bt/app", map[string]any{"v": "no"})
		self, err := b.Auth().Token().LookupSelf()
		if err != nil {
			return err
		}
		return all(eq("read", got.Data, map[string]any{"v": "batch-read"}), status("write", errWrite, 403),
			eq("type", self.Data["type"], "batch"), eq("accessor", t.Auth.Accessor, ""), eq("renewable", t.Auth.Renewable, false),
			eq("policies", t.Auth.Policies, []string{"default", "go-batch"}))
	})
	s.check("auth/token/create: a batch token cannot create tokens, and dies with its parent", func() error {
		parent, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"root"}, TTL: "10m"})
		if err != nil {
			return err
		}
		// Its policy lets it create tokens: only its type stops it (batch tokens cannot be root tokens).
		minter := policy + "\npath \"auth/token/create*\" { capabilities = [\"create\", \"update\", \"sudo\"] }\n"
		if err := s.root.Sys().PutPolicy("go-batch-minter", minter); err != nil {
			return err
		}
		t, err := s.as(parent.Auth.ClientToken).Auth().Token().Create(&api.TokenCreateRequest{Type: "batch", Policies: []string{"go-batch-minter"}, TTL: "5m"})
		if err != nil {
			return err
		}
		b := s.as(t.Auth.ClientToken)
		_, errChild := b.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"go-batch"}, TTL: "1m"})
		_, errOrphan := b.Auth().Token().CreateOrphan(&api.TokenCreateRequest{Policies: []string{"go-batch"}, TTL: "1m"})
		if err := all(status("child", errChild, 400), truth(strings.Contains(fmt.Sprint(errChild), "batch tokens cannot create more tokens"), "error %v", errChild),
			status("orphan", errOrphan, 400)); err != nil {
			return err
		}
		if _, err := b.Logical().Read("go-bt/app"); err != nil {
			return fmt.Errorf("read before the parent's revocation: %w", err)
		}
		if err := tokens.RevokeTree(parent.Auth.ClientToken); err != nil {
			return err
		}
		_, err = b.Logical().Read("go-bt/app")
		return status("read after the parent's revocation", err, 403)
	})

	s.check("auth/token/roles: write, read and list a role", func() error {
		if _, err := s.root.Logical().Write("auth/token/roles/go-role", map[string]any{"allowed_policies": []string{"go-reader", "go-batch"},
			"orphan": true, "token_explicit_max_ttl": "2h", "path_suffix": "ci"}); err != nil {
			return err
		}
		role, err := s.root.Logical().Read("auth/token/roles/go-role")
		if err != nil {
			return err
		}
		list, err := s.root.Logical().List("auth/token/roles")
		if err != nil {
			return err
		}
		return all(eq("allowed_policies", stringsOf(role.Data["allowed_policies"]), []string{"go-batch", "go-reader"}),
			eq("orphan", role.Data["orphan"], true), eq("token_explicit_max_ttl", role.Data["token_explicit_max_ttl"], jsonNumber(7200)),
			eq("name", role.Data["name"], "go-role"), truth(contains(stringsOf(list.Data["keys"]), "go-role"), "go-role not listed: %v", list.Data))
	})
	s.check("auth/token/create/:role: CreateWithRole applies the role: orphan, capped TTL, its creation path", func() error {
		t, err := tokens.CreateWithRole(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "5h"}, "go-role")
		if err != nil {
			return err
		}
		look, err := tokens.Lookup(t.Auth.ClientToken)
		if err != nil {
			return err
		}
		return all(eq("policies", t.Auth.Policies, []string{"default", "go-reader"}), eq("orphan", t.Auth.Orphan, true),
			eq("lease_duration", t.Auth.LeaseDuration, 7200), eq("path", look.Data["path"], "auth/token/create/go-role/ci"),
			eq("role", look.Data["role"], "go-role"))
	})
	s.check("auth/token/create/:role: policies outside allowed_policies are refused, even for root", func() error {
		_, err := tokens.CreateWithRole(&api.TokenCreateRequest{Policies: []string{"root"}}, "go-role")
		_, err2 := tokens.CreateWithRole(&api.TokenCreateRequest{Policies: []string{"go-reader", "go-other"}}, "go-role")
		_, err3 := tokens.CreateWithRole(&api.TokenCreateRequest{}, "go-no-such-role")
		return all(status("root", err, 400), status("go-other", err2, 400), status("unknown role", err3, 400))
	})
	s.check("sys/leases/revoke-prefix/auth/token/create/:role: revokes the role's tokens, not others", func() error {
		a, err := tokens.CreateWithRole(&api.TokenCreateRequest{Policies: []string{"go-reader"}}, "go-role")
		if err != nil {
			return err
		}
		other, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		if err := s.root.Sys().RevokePrefix("auth/token/create/go-role"); err != nil {
			return err
		}
		_, errA := tokens.Lookup(a.Auth.ClientToken)
		_, errOther := tokens.Lookup(other.Auth.ClientToken)
		return all(status("role token", errA, 403), errOther)
	})
	s.check("auth/token/roles: delete a role; it is gone and creating with it is refused", func() error {
		if _, err := s.root.Logical().Delete("auth/token/roles/go-role"); err != nil {
			return err
		}
		role, err := s.root.Logical().Read("auth/token/roles/go-role")
		if err != nil {
			return err
		}
		_, errCreate := tokens.CreateWithRole(&api.TokenCreateRequest{Policies: []string{"go-reader"}}, "go-role")
		return all(truth(role == nil, "still there: %+v", role), status("create", errCreate, 400))
	})
	s.check("auth/token/tidy: 202 with Vault's warning; live tokens survive it", func() error {
		live, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		resp, err := s.root.Logical().WriteRaw("auth/token/tidy", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sec, err := api.ParseSecret(resp.Body)
		if err != nil {
			return err
		}
		if err := all(eq("status", resp.StatusCode, 202), truth(sec != nil && len(sec.Warnings) == 1 &&
			strings.Contains(sec.Warnings[0], "Tidy operation successfully started"), "warnings %+v", sec)); err != nil {
			return err
		}
		_, err = tokens.Lookup(live.Auth.ClientToken)
		return err
	})
}
