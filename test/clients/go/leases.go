package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/userpass"
)

// leaseChecks: sys/leases through Sys().Lookup, Renew, Revoke and RevokePrefix, on the leases of tokens and,
// when a PostgreSQL server is given, of database credentials.
func leaseChecks(s *suite) {
	sys := s.root.Sys()
	const password = "lease-pw-1"
	login := func() (*api.Client, error) {
		c := s.as("")
		up, err := userpass.NewUserpassAuth("bob", &userpass.Password{FromString: password}, userpass.WithMountPath("go-leases"))
		if err != nil {
			return nil, err
		}
		_, err = c.Auth().Login(s.ctx, up)
		return c, err
	}
	var bob *api.Client
	var leaseID string
	s.check("sys/leases/lookup: a login's token has a lease under its login path", func() error {
		if err := sys.EnableAuthWithOptions("go-leases", &api.EnableAuthOptions{Type: "userpass"}); err != nil {
			return err
		}
		if _, err := s.root.Logical().Write("auth/go-leases/users/bob", map[string]any{"password": password, "token_ttl": "1h"}); err != nil {
			return err
		}
		var err error
		if bob, err = login(); err != nil {
			return err
		}
		list, err := s.root.Logical().List("sys/leases/lookup/auth/go-leases/login/bob/")
		if err != nil {
			return err
		}
		keys := stringsOf(list.Data["keys"])
		if len(keys) != 1 {
			return fmt.Errorf("want one lease, got %v", keys)
		}
		leaseID = "auth/go-leases/login/bob/" + keys[0]
		lease, err := sys.Lookup(leaseID)
		if err != nil {
			return err
		}
		ttl, _ := lease.Data["ttl"].(interface{ Int64() (int64, error) })
		secs, _ := ttl.Int64()
		return all(eq("id", lease.Data["id"], leaseID), eq("renewable", lease.Data["renewable"], true),
			truth(secs > 3590 && secs <= 3600, "ttl %v", lease.Data["ttl"]), truth(lease.Data["issue_time"] != nil && lease.Data["expire_time"] != nil, "times missing"))
	})
	s.check("sys/leases/renew: a token's lease is renewed through auth/token, not here (400)", func() error {
		_, err := sys.Renew(leaseID, 600)
		return all(status("renew", err, 400), truth(strings.Contains(fmt.Sprint(err), "tokens cannot be renewed through this endpoint"), "error %v", err))
	})
	s.check("sys/leases/revoke: revoking a token's lease revokes the token", func() error {
		if err := sys.Revoke(leaseID); err != nil {
			return err
		}
		_, err := bob.Auth().Token().LookupSelf()
		return status("lookup-self", err, 403)
	})
	s.check("sys/leases/revoke-prefix: revokes every token an auth mount issued", func() error {
		a, err := login()
		if err != nil {
			return err
		}
		b, err := login()
		if err != nil {
			return err
		}
		if err := sys.RevokePrefix("auth/go-leases/"); err != nil {
			return err
		}
		_, errA := a.Auth().Token().LookupSelf()
		_, errB := b.Auth().Token().LookupSelf()
		return all(status("first", errA, 403), status("second", errB, 403))
	})
	s.check("sys/leases/lookup: an unknown lease is 400", func() error {
		_, err := sys.Lookup("auth/go-leases/login/bob/nope")
		return status("lookup", err, 400)
	})

	if os.Getenv("COFRE_PG_HOST") != "" {
		databaseLeaseChecks(s)
	}
}

// databaseLeaseChecks: dynamic PostgreSQL credentials under a lease, looked up, renewed and revoked.
func databaseLeaseChecks(s *suite) {
	sys := s.root.Sys()
	var secret *api.Secret
	s.check("database: mount, configure a PostgreSQL connection and a role", func() error {
		if err := sys.Mount("go-db", &api.MountInput{Type: "database"}); err != nil {
			return err
		}
		url := fmt.Sprintf("postgresql://{{username}}:{{password}}@%s:%s/postgres?sslmode=disable", os.Getenv("COFRE_PG_HOST"), os.Getenv("COFRE_PG_PORT"))
		if _, err := s.root.Logical().Write("go-db/config/pg", map[string]any{"plugin_name": "postgresql-database-plugin",
			"connection_url": url, "username": os.Getenv("COFRE_PG_USER"), "password": os.Getenv("COFRE_PG_PASSWORD"), "allowed_roles": "ro"}); err != nil {
			return err
		}
		_, err := s.root.Logical().Write("go-db/roles/ro", map[string]any{"db_name": "pg", "default_ttl": "1h", "max_ttl": "2h",
			"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`}})
		return err
	})
	s.check("database: creds come with a renewable lease", func() error {
		var err error
		if secret, err = s.root.Logical().Read("go-db/creds/ro"); err != nil {
			return err
		}
		return all(truth(len(secret.LeaseID) > len("go-db/creds/ro/"), "lease_id %q", secret.LeaseID), eq("lease_duration", secret.LeaseDuration, 3600),
			eq("renewable", secret.Renewable, true), truth(secret.Data["username"] != nil && secret.Data["password"] != nil, "no username/password"))
	})
	s.check("sys/leases/lookup: the credential's lease", func() error {
		lease, err := sys.Lookup(secret.LeaseID)
		if err != nil {
			return err
		}
		return all(eq("id", lease.Data["id"], secret.LeaseID), eq("renewable", lease.Data["renewable"], true))
	})
	s.check("sys/leases/renew: Sys().Renew extends the credential's lease", func() error {
		renewed, err := sys.Renew(secret.LeaseID, 600)
		if err != nil {
			return err
		}
		lease, err := sys.Lookup(secret.LeaseID)
		if err != nil {
			return err
		}
		ttl, _ := lease.Data["ttl"].(interface{ Int64() (int64, error) })
		secs, _ := ttl.Int64()
		return all(eq("lease_id", renewed.LeaseID, secret.LeaseID), eq("lease_duration", renewed.LeaseDuration, 600), eq("renewable", renewed.Renewable, true),
			truth(lease.Data["last_renewal"] != nil, "no last_renewal after a renewal"), truth(secs > 590 && secs <= 600, "ttl after renewal %v", lease.Data["ttl"]))
	})
	s.check("sys/leases/revoke: Sys().Revoke ends the credential's lease", func() error {
		if err := sys.Revoke(secret.LeaseID); err != nil {
			return err
		}
		_, err := sys.Lookup(secret.LeaseID)
		return status("lookup after revoke", err, 400)
	})
	s.check("sys/leases/revoke: RevokeWithOptions without sync answers at once and revokes in the background", func() error {
		a, err := s.root.Logical().Read("go-db/creds/ro")
		if err != nil {
			return err
		}
		if err := sys.RevokeWithOptions(&api.RevokeOptions{LeaseID: a.LeaseID, Sync: false}); err != nil {
			return err
		}
		for i := 0; i < 100; i++ {
			if _, err := sys.Lookup(a.LeaseID); err != nil {
				return status("lookup after the revocation", err, 400)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("the lease is still there 5 s after an async revoke")
	})
	s.check("sys/leases/revoke-prefix: revokes every credential of a role", func() error {
		a, err := s.root.Logical().Read("go-db/creds/ro")
		if err != nil {
			return err
		}
		if err := sys.RevokePrefix("go-db/creds/ro"); err != nil {
			return err
		}
		_, err = sys.Lookup(a.LeaseID)
		return status("lookup after revoke-prefix", err, 400)
	})
}
