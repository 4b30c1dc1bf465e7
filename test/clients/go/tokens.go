package main

import (
	"github.com/hashicorp/vault/api"
)

// tokenChecks: the token auth method through Auth().Token(): create (defaults, child, orphan), lookup, renew,
// revoke (tree, orphan, self, accessor) and accessors.
func tokenChecks(s *suite) {
	tokens := s.root.Auth().Token()

	s.check("auth/token/create: the client's default request as root gives a root token without TTL", func() error {
		secret, err := tokens.Create(&api.TokenCreateRequest{})
		if err != nil {
			return err
		}
		look, err := tokens.Lookup(secret.Auth.ClientToken)
		if err != nil {
			return err
		}
		return all(eq("policies", secret.Auth.Policies, []string{"root"}), eq("lease_duration", secret.Auth.LeaseDuration, 0),
			eq("renewable", secret.Auth.Renewable, false), truth(secret.Auth.Accessor != "", "no accessor"),
			eq("orphan", secret.Auth.Orphan, false), eq("display_name", look.Data["display_name"], "token"),
			eq("type", look.Data["type"], "service"), tokens.RevokeTree(secret.Auth.ClientToken))
	})
	s.check("auth/token/create: policies, TTL and metadata", func() error {
		secret, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "1h", Metadata: map[string]string{"team": "a"}, DisplayName: "ci"})
		if err != nil {
			return err
		}
		look, err := tokens.Lookup(secret.Auth.ClientToken)
		if err != nil {
			return err
		}
		ttl, _ := look.TokenTTL()
		meta, _ := look.TokenMetadata()
		return all(eq("policies", secret.Auth.Policies, []string{"default", "go-reader"}), eq("lease_duration", secret.Auth.LeaseDuration, 3600),
			eq("renewable", secret.Auth.Renewable, true), eq("auth.metadata", secret.Auth.Metadata, map[string]string{"team": "a"}),
			truth(ttl.Seconds() > 3590 && ttl.Seconds() <= 3600, "ttl %v", ttl), eq("meta", meta, map[string]string{"team": "a"}),
			eq("display_name", look.Data["display_name"], "token-ci"), eq("path", look.Data["path"], "auth/token/create"))
	})

	var parent, child, orphan string
	s.check("auth/token/create: a child of a non-root token, capped by its parent", func() error {
		p, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
		if err != nil {
			return err
		}
		parent = p.Auth.ClientToken
		c, err := s.as(parent).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "2h"})
		if err != nil {
			return err
		}
		child = c.Auth.ClientToken
		look, err := tokens.Lookup(child)
		if err != nil {
			return err
		}
		ttl, _ := look.TokenTTL()
		return all(eq("orphan", look.Data["orphan"], false), truth(ttl.Seconds() <= 3600, "child outlives its parent: %v", ttl))
	})
	s.check("auth/token/create-orphan: CreateOrphan and no_parent make orphans", func() error {
		o, err := s.as(parent).Auth().Token().CreateOrphan(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "1h"})
		if err != nil {
			return err
		}
		orphan = o.Auth.ClientToken
		np, err := tokens.Create(&api.TokenCreateRequest{NoParent: true, Policies: []string{"go-reader"}, TTL: "1h"})
		if err != nil {
			return err
		}
		look, err := tokens.Lookup(orphan)
		if err != nil {
			return err
		}
		look2, err := tokens.Lookup(np.Auth.ClientToken)
		if err != nil {
			return err
		}
		return all(eq("auth.orphan", o.Auth.Orphan, true), eq("orphan", look.Data["orphan"], true), eq("no_parent orphan", look2.Data["orphan"], true))
	})
	s.check("auth/token/lookup-self: a token looks itself up", func() error {
		self, err := s.as(child).Auth().Token().LookupSelf()
		if err != nil {
			return err
		}
		id, _ := self.TokenID()
		policies, _ := self.TokenPolicies()
		return all(eq("id", id, child), eq("policies", policies, []string{"default", "go-reader"}))
	})
	s.check("auth/token/renew and renew-self: the TTL is extended", func() error {
		r, err := tokens.Renew(child, 1800)
		if err != nil {
			return err
		}
		self, err := s.as(child).Auth().Token().RenewSelf(600)
		if err != nil {
			return err
		}
		return all(eq("renew lease_duration", r.Auth.LeaseDuration, 1800), eq("renew client_token", r.Auth.ClientToken, child),
			eq("renew-self lease_duration", self.Auth.LeaseDuration, 600))
	})
	s.check("auth/token/revoke: revoking a parent revokes its children, not its orphans", func() error {
		if err := tokens.RevokeTree(parent); err != nil {
			return err
		}
		_, errChild := tokens.Lookup(child)
		_, errOrphan := tokens.Lookup(orphan)
		return all(status("child lookup", errChild, 403), errOrphan)
	})
	s.check("auth/token/revoke-orphan: the children of a revoked token live on as orphans", func() error {
		p, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
		if err != nil {
			return err
		}
		c, err := s.as(p.Auth.ClientToken).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		if err := tokens.RevokeOrphan(p.Auth.ClientToken); err != nil {
			return err
		}
		_, errParent := tokens.Lookup(p.Auth.ClientToken)
		look, err := tokens.Lookup(c.Auth.ClientToken)
		if err != nil {
			return err
		}
		return all(status("parent lookup", errParent, 403), eq("orphan", look.Data["orphan"], true))
	})
	s.check("auth/token/revoke-self: a token revokes itself", func() error {
		t, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		c := s.as(t.Auth.ClientToken)
		if err := c.Auth().Token().RevokeSelf(""); err != nil {
			return err
		}
		_, err = c.Auth().Token().LookupSelf()
		return status("lookup-self after revoke-self", err, 403)
	})
	s.check("auth/token/accessors: lookup, renew, list and revoke by accessor", func() error {
		t, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		accessor := t.Auth.Accessor
		look, err := tokens.LookupAccessor(accessor)
		if err != nil {
			return err
		}
		renewed, err := tokens.RenewAccessor(accessor, 1200)
		if err != nil {
			return err
		}
		list, err := s.root.Logical().List("auth/token/accessors")
		if err != nil {
			return err
		}
		if err := all(eq("accessor", look.Data["accessor"], accessor), eq("id hidden", look.Data["id"], ""),
			eq("renewed lease_duration", renewed.Auth.LeaseDuration, 1200),
			truth(contains(stringsOf(list.Data["keys"]), accessor), "accessor not listed")); err != nil {
			return err
		}
		if err := tokens.RevokeAccessor(accessor); err != nil {
			return err
		}
		_, err = tokens.Lookup(t.Auth.ClientToken)
		return status("lookup after revoke-accessor", err, 403)
	})
	s.check("auth/token: num_uses runs out", func() error {
		t, err := tokens.Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m", NumUses: 2})
		if err != nil {
			return err
		}
		c := s.as(t.Auth.ClientToken)
		for i := 0; i < 2; i++ {
			if _, err := c.Auth().Token().LookupSelf(); err != nil {
				return err
			}
		}
		_, err = c.Auth().Token().LookupSelf()
		return status("third use", err, 403)
	})
	s.check("auth/token/lookup: an unknown token is 403", func() error {
		_, err := tokens.Lookup("cvs.not-a-token")
		return status("lookup", err, 403)
	})
}
