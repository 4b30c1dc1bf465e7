package main

import (
	"github.com/hashicorp/vault/api"
)

const readerPolicy = `path "go-kv2/data/shared/*" {
  capabilities = ["read"]
}

path "go-kv2/metadata/shared/*" {
  capabilities = ["list"]
}
`

// policyChecks: ACL policies through Sys().*Policy, and what a token holding one may and may not do.
func policyChecks(s *suite) {
	sys := s.root.Sys()
	s.check("sys/policy: PutPolicy and GetPolicy round-trip the rules", func() error {
		if err := sys.PutPolicy("go-reader", readerPolicy); err != nil {
			return err
		}
		got, err := sys.GetPolicy("go-reader")
		return all(err, eq("rules", got, readerPolicy))
	})
	s.check("sys/policy: ListPolicies has default, root and the new policy", func() error {
		names, err := sys.ListPolicies()
		return all(err, truth(contains(names, "go-reader") && contains(names, "default") && contains(names, "root"), "names %v", names))
	})
	s.check("sys/policies/acl/:name: the same policy read by the newer path", func() error {
		sec, err := s.root.Logical().Read("sys/policies/acl/go-reader")
		if err != nil {
			return err
		}
		return all(eq("name", sec.Data["name"], "go-reader"), eq("policy", sec.Data["policy"], readerPolicy))
	})
	s.check("sys/policy: invalid HCL is refused with 400", func() error {
		return status("put", sys.PutPolicy("go-broken", `path "x" { capabilities = `), 400)
	})
	var limited *api.Client
	s.check("policy: a token holding the policy reads and lists what it allows", func() error {
		if _, err := s.root.KVv2("go-kv2").Put(s.ctx, "shared/one", map[string]any{"v": "1"}); err != nil {
			return err
		}
		t, err := s.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"go-reader"}, TTL: "10m"})
		if err != nil {
			return err
		}
		limited = s.as(t.Auth.ClientToken)
		got, err := limited.KVv2("go-kv2").Get(s.ctx, "shared/one")
		if err != nil {
			return err
		}
		list, err := limited.Logical().List("go-kv2/metadata/shared")
		if err != nil {
			return err
		}
		return all(eq("v", got.Data["v"], "1"), eq("keys", stringsOf(list.Data["keys"]), []string{"one"}))
	})
	s.check("sys/capabilities*: what the policy grants, asked by token, by accessor and by the token itself", func() error {
		self, err := limited.Auth().Token().LookupSelf()
		if err != nil {
			return err
		}
		accessor, _ := self.TokenAccessor()
		byToken, err := sys.Capabilities(limited.Token(), "go-kv2/data/shared/one")
		if err != nil {
			return err
		}
		byAccessor, err := sys.CapabilitiesAccessor(accessor, "go-kv2/metadata/shared/one")
		if err != nil {
			return err
		}
		own, err := limited.Sys().CapabilitiesSelf("go-kv2/data/private/one")
		if err != nil {
			return err
		}
		rootCaps, err := sys.CapabilitiesSelf("anything/at/all")
		return all(err, eq("by token", byToken, []string{"read"}), eq("by accessor", byAccessor, []string{"list"}),
			eq("self elsewhere", own, []string{"deny"}), eq("root", rootCaps, []string{"root"}))
	})
	s.check("sys/policies/acl: LIST names the policies", func() error {
		list, err := s.root.Logical().List("sys/policies/acl")
		if err != nil {
			return err
		}
		keys := stringsOf(list.Data["keys"])
		return truth(contains(keys, "go-reader") && contains(keys, "default"), "keys %v", keys)
	})
	s.check("policy: the limited token is denied everything else with 403", func() error {
		_, errWrite := limited.KVv2("go-kv2").Put(s.ctx, "shared/one", map[string]any{"v": "2"})
		_, errOther := limited.KVv2("go-kv2").Get(s.ctx, "private/one")
		_, errMounts := limited.Sys().ListMounts()
		errPolicy := limited.Sys().PutPolicy("go-reader", `path "*" { capabilities = ["sudo", "read"] }`)
		_, errCreate := limited.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}})
		errDelete := limited.KVv2("go-kv2").Destroy(s.ctx, "shared/one", []int{1})
		return all(status("write", errWrite, 403), status("read elsewhere", errOther, 403), status("sys/mounts", errMounts, 403),
			status("put policy", errPolicy, 403), status("create root token", errCreate, 403), status("destroy", errDelete, 403))
	})
	s.check("sys/policy: DeletePolicy removes it and the token loses its access", func() error {
		if err := sys.DeletePolicy("go-reader"); err != nil {
			return err
		}
		names, err := sys.ListPolicies()
		if err != nil {
			return err
		}
		_, errRead := limited.KVv2("go-kv2").Get(s.ctx, "shared/one")
		return all(truth(!contains(names, "go-reader"), "still listed"), status("read after delete", errRead, 403))
	})
	s.check("sys/policy: the default and root policies cannot be deleted", func() error {
		return all(status("delete root", sys.DeletePolicy("root"), 400), status("delete default", sys.DeletePolicy("default"), 400))
	})
}
