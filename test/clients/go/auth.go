package main

import (
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/userpass"
)

// authChecks: userpass and approle enabled, tuned, logged in to through the client's login helpers, disabled.
func authChecks(s *suite) {
	sys := s.root.Sys()
	logical := s.root.Logical()
	const password = "go-client-pw-1"

	s.check("sys/auth: enable userpass with the client's default options", func() error {
		return sys.EnableAuthWithOptions("go-userpass", &api.EnableAuthOptions{Type: "userpass"})
	})
	s.check("sys/auth: enable approle with a description", func() error {
		return sys.EnableAuthWithOptions("go-approle", &api.EnableAuthOptions{Type: "approle", Description: "apps"})
	})
	s.check("sys/auth: list shows both methods and token/", func() error {
		methods, err := sys.ListAuth()
		if err != nil {
			return err
		}
		up, ar, tok := methods["go-userpass/"], methods["go-approle/"], methods["token/"]
		if up == nil || ar == nil || tok == nil {
			return truth(false, "missing methods in %v", methods)
		}
		return all(eq("userpass type", up.Type, "userpass"), eq("approle type", ar.Type, "approle"),
			eq("approle description", ar.Description, "apps"), eq("token type", tok.Type, "token"),
			truth(up.Accessor != "" && up.Accessor != ar.Accessor, "accessors %q %q", up.Accessor, ar.Accessor))
	})
	s.check("sys/auth/:path: GetAuth reads one method", func() error {
		m, err := sys.GetAuth("go-userpass")
		if err != nil {
			return err
		}
		return eq("type", m.Type, "userpass")
	})
	s.check(`sys/mounts/auth/:path/tune: TuneMount("auth/go-userpass") sets the TTLs its tokens get`, func() error {
		if err := sys.TuneMount("auth/go-userpass", api.MountConfigInput{DefaultLeaseTTL: "10m", MaxLeaseTTL: "1h"}); err != nil {
			return err
		}
		cfg, err := sys.MountConfig("auth/go-userpass")
		if err != nil {
			return err
		}
		return all(eq("default_lease_ttl", cfg.DefaultLeaseTTL, 600), eq("max_lease_ttl", cfg.MaxLeaseTTL, 3600))
	})
	s.check("auth/userpass: create a user", func() error {
		_, err := logical.Write("auth/go-userpass/users/alice", map[string]any{"password": password, "token_policies": "go-reader"})
		return err
	})
	s.check("auth/userpass: Auth().Login with the userpass helper sets the client's token", func() error {
		c := s.as("")
		login, err := userpass.NewUserpassAuth("alice", &userpass.Password{FromString: password}, userpass.WithMountPath("go-userpass"))
		if err != nil {
			return err
		}
		secret, err := c.Auth().Login(s.ctx, login)
		if err != nil {
			return err
		}
		self, err := c.Auth().Token().LookupSelf()
		if err != nil {
			return err
		}
		ttl, _ := self.TokenTTL()
		policies, _ := self.TokenPolicies()
		return all(eq("client token", c.Token(), secret.Auth.ClientToken), eq("auth.policies", secret.Auth.Policies, []string{"default", "go-reader"}),
			eq("auth.metadata.username", secret.Auth.Metadata["username"], "alice"),
			eq("lease_duration from the tune", secret.Auth.LeaseDuration, 600), eq("renewable", secret.Auth.Renewable, true),
			truth(ttl.Seconds() > 590 && ttl.Seconds() <= 600, "lookup-self ttl %v", ttl),
			eq("lookup-self policies", policies, []string{"default", "go-reader"}),
			eq("lookup-self path", self.Data["path"], "auth/go-userpass/login/alice"))
	})
	s.check("auth/userpass: a wrong password is refused with 400", func() error {
		login, err := userpass.NewUserpassAuth("alice", &userpass.Password{FromString: "wrong"}, userpass.WithMountPath("go-userpass"))
		if err != nil {
			return err
		}
		_, err = s.as("").Auth().Login(s.ctx, login)
		return status("login", err, 400)
	})

	var roleID, secretID string
	s.check("auth/approle: create a role, read its role ID, generate a secret ID", func() error {
		if _, err := logical.Write("auth/go-approle/role/app", map[string]any{"token_policies": []string{"go-reader"}, "token_ttl": "20m", "secret_id_num_uses": 2}); err != nil {
			return err
		}
		r, err := logical.Read("auth/go-approle/role/app/role-id")
		if err != nil {
			return err
		}
		roleID, _ = r.Data["role_id"].(string)
		sid, err := logical.Write("auth/go-approle/role/app/secret-id", nil)
		if err != nil {
			return err
		}
		secretID, _ = sid.Data["secret_id"].(string)
		accessor, _ := sid.Data["secret_id_accessor"].(string)
		return all(truth(roleID != "", "no role_id: %v", r.Data), truth(secretID != "", "no secret_id"), truth(accessor != "", "no secret_id_accessor"))
	})
	s.check("auth/approle: Auth().Login with the approle helper", func() error {
		c := s.as("")
		login, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath("go-approle"))
		if err != nil {
			return err
		}
		secret, err := c.Auth().Login(s.ctx, login)
		if err != nil {
			return err
		}
		return all(eq("client token", c.Token(), secret.Auth.ClientToken), eq("policies", secret.Auth.Policies, []string{"default", "go-reader"}),
			eq("metadata.role_name", secret.Auth.Metadata["role_name"], "app"), eq("lease_duration", secret.Auth.LeaseDuration, 1200))
	})
	s.check("auth/approle: a wrong secret ID is refused with 400", func() error {
		login, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: "00000000-0000-0000-0000-000000000000"}, approle.WithMountPath("go-approle"))
		if err != nil {
			return err
		}
		_, err = s.as("").Auth().Login(s.ctx, login)
		return status("login", err, 400)
	})
	s.check("sys/auth/:path: disabling a method revokes the tokens it issued", func() error {
		c := s.as("")
		login, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath("go-approle"))
		if err != nil {
			return err
		}
		if _, err := c.Auth().Login(s.ctx, login); err != nil {
			return err
		}
		if err := sys.DisableAuth("go-approle"); err != nil {
			return err
		}
		_, err = c.Auth().Token().LookupSelf()
		if err := status("lookup-self after disable", err, 403); err != nil {
			return err
		}
		methods, err := sys.ListAuth()
		return all(err, truth(methods["go-approle/"] == nil, "go-approle/ still listed"))
	})
}
