// Command conformance drives a Cofre server with HashiCorp's official Go client (github.com/hashicorp/vault/api)
// and checks that every answer is what the client expects from Vault. It prints one line per check, "ok   <what>"
// or "FAIL <what>: <why>", then a summary, and exits 1 when any check failed.
//
// It reads VAULT_ADDR and VAULT_TOKEN (a root token) as the client does. COFRE_AUDIT_FILE names the file the audit
// checks enable a file device on (the server must be able to write it, and this program to read it). When
// COFRE_PG_HOST, COFRE_PG_PORT, COFRE_PG_USER and COFRE_PG_PASSWORD name a PostgreSQL superuser, database leases
// are checked too. COFRE_UNSEAL_KEYS (comma-separated) holds the server's unseal key shares, for generate-root and
// rekey; the rekey runs last, since it replaces them and seals the server once.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/vault/api"
)

// suite holds the root client and counts the checks; every area adds its checks with check.
type suite struct {
	ctx    context.Context
	root   *api.Client
	passed int
	failed int
}

// check runs one named check: an error (or a panic, such as a nil answer dereferenced) fails it.
func (s *suite) check(name string, fn func() error) {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return fn()
	}()
	if err != nil {
		s.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	s.passed++
	fmt.Printf("ok   %s\n", name)
}

// as returns a client of the same server that presents token instead of the root token.
func (s *suite) as(token string) *api.Client {
	c, err := s.root.Clone()
	if err != nil {
		panic(err)
	}
	c.SetToken(token)
	return c
}

func main() {
	if os.Getenv("VAULT_ADDR") == "" || os.Getenv("VAULT_TOKEN") == "" {
		fmt.Fprintln(os.Stderr, "VAULT_ADDR and VAULT_TOKEN (a root token) must be set")
		os.Exit(2)
	}
	root, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// A failed request is a failed check, not something to retry until it passes.
	root.SetMaxRetries(0)
	s := &suite{ctx: context.Background(), root: root}

	sysChecks(s)
	mountChecks(s)
	authChecks(s)
	kvV1Checks(s)
	kvV2Checks(s)
	tokenChecks(s)
	policyChecks(s)
	leaseChecks(s)
	auditChecks(s)
	wrappingChecks(s)
	tokenRoleChecks(s)
	sysToolChecks(s)
	// Last: the rekey replaces the key shares and seals the server once.
	operatorChecks(s)

	fmt.Printf("checks: %d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}
