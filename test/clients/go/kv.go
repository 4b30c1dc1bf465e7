package main

import (
	"errors"
	"time"

	"github.com/hashicorp/vault/api"
)

// kvV1Checks: a version 1 KV mount through the client's KVv1 helper and Logical().
func kvV1Checks(s *suite) {
	kv := s.root.KVv1("go-kv1")
	s.check("kv v1: mount with options version 1", func() error {
		return s.root.Sys().Mount("go-kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}})
	})
	s.check("kv v1: put and get", func() error {
		if err := kv.Put(s.ctx, "app/db", map[string]any{"user": "app", "port": 5432}); err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("user", got.Data["user"], "app"), eq("port", got.Data["port"], any(jsonNumber(5432))))
	})
	s.check("kv v1: list", func() error {
		if err := kv.Put(s.ctx, "app/api", map[string]any{"k": "v"}); err != nil {
			return err
		}
		list, err := s.root.Logical().List("go-kv1/app")
		if err != nil {
			return err
		}
		return eq("keys", stringsOf(list.Data["keys"]), []string{"api", "db"})
	})
	s.check("kv v1: delete, then get is not found", func() error {
		if err := kv.Delete(s.ctx, "app/api"); err != nil {
			return err
		}
		_, err := kv.Get(s.ctx, "app/api")
		return truth(errors.Is(err, api.ErrSecretNotFound), "want ErrSecretNotFound, got %v", err)
	})
}

// kvV2Checks: a version 2 KV mount through the client's KVv2 helper: versions, soft delete, undelete, destroy,
// metadata, patch, check-and-set and list.
func kvV2Checks(s *suite) {
	kv := s.root.KVv2("go-kv2")
	s.check("kv v2: mount with options version 2", func() error {
		return s.root.Sys().Mount("go-kv2", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	})
	s.check("kv v2: put twice gives versions 1 and 2", func() error {
		v1, err := kv.Put(s.ctx, "app/db", map[string]any{"password": "pw-1", "user": "app"})
		if err != nil {
			return err
		}
		v2, err := kv.Put(s.ctx, "app/db", map[string]any{"password": "pw-2", "user": "app"})
		if err != nil {
			return err
		}
		return all(eq("first version", v1.VersionMetadata.Version, 1), eq("second version", v2.VersionMetadata.Version, 2),
			truth(!v2.VersionMetadata.CreatedTime.IsZero(), "created_time is zero"))
	})
	s.check("kv v2: cas 0 writes only when the secret does not exist", func() error {
		if _, err := kv.Put(s.ctx, "create-only", map[string]any{"a": "1"}, api.WithCheckAndSet(0)); err != nil {
			return err
		}
		_, err := kv.Put(s.ctx, "create-only", map[string]any{"a": "2"}, api.WithCheckAndSet(0))
		return status("second create-only write", err, 400)
	})
	s.check("kv v2: get reads the newest version with its metadata", func() error {
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("password", got.Data["password"], "pw-2"), eq("version", got.VersionMetadata.Version, 2),
			truth(got.VersionMetadata.DeletionTime.IsZero(), "deletion_time set"), eq("destroyed", got.VersionMetadata.Destroyed, false))
	})
	s.check("kv v2: GetVersion reads an older version", func() error {
		got, err := kv.GetVersion(s.ctx, "app/db", 1)
		if err != nil {
			return err
		}
		return all(eq("password", got.Data["password"], "pw-1"), eq("version", got.VersionMetadata.Version, 1))
	})
	s.check("kv v2: check-and-set with a stale version is refused with 400", func() error {
		_, err := kv.Put(s.ctx, "app/db", map[string]any{"password": "stale"}, api.WithCheckAndSet(1))
		return status("put cas=1", err, 400)
	})
	s.check("kv v2: Patch (HTTP PATCH, JSON merge patch) adds a key and keeps the others", func() error {
		patched, err := kv.Patch(s.ctx, "app/db", map[string]any{"host": "db.internal"}, api.WithMergeMethod("patch"))
		if err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("patched version", patched.VersionMetadata.Version, 3), eq("host", got.Data["host"], "db.internal"),
			eq("password kept", got.Data["password"], "pw-2"), eq("user kept", got.Data["user"], "app"))
	})
	s.check("kv v2: JSONMergePatch with null removes a key (no silent fallback)", func() error {
		// KVv2.Patch falls back to read-then-write on a 405; calling the PATCH verb directly proves it is served.
		_, err := s.root.Logical().JSONMergePatch(s.ctx, "go-kv2/data/app/db", map[string]any{"data": map[string]any{"host": nil}})
		if err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		_, has := got.Data["host"]
		return all(truth(!has, "host still present: %v", got.Data), eq("version", got.VersionMetadata.Version, 4))
	})
	s.check("kv v2: Patch of a missing secret is ErrSecretNotFound", func() error {
		_, err := kv.Patch(s.ctx, "app/none", map[string]any{"a": "b"})
		return truth(errors.Is(err, api.ErrSecretNotFound), "want ErrSecretNotFound, got %v", err)
	})
	s.check("kv v2: Patch with the read-then-write method", func() error {
		patched, err := kv.Patch(s.ctx, "app/db", map[string]any{"port": "5432"}, api.WithMergeMethod("rw"))
		if err != nil {
			return err
		}
		return eq("version", patched.VersionMetadata.Version, 5)
	})
	s.check("kv v2: subkeys shows the structure without values", func() error {
		if _, err := kv.Put(s.ctx, "subkeys-probe", map[string]any{"db": map[string]any{"user": "u", "pw": "p"}, "port": 1}); err != nil {
			return err
		}
		sec, err := s.root.Logical().Read("go-kv2/subkeys/subkeys-probe")
		if err != nil {
			return err
		}
		return eq("subkeys", sec.Data["subkeys"], map[string]any{"db": map[string]any{"user": nil, "pw": nil}, "port": nil})
	})
	s.check("kv v2: GetVersionsAsList lists every version in order", func() error {
		versions, err := kv.GetVersionsAsList(s.ctx, "app/db")
		if err != nil {
			return err
		}
		nums := []int{}
		for _, v := range versions {
			nums = append(nums, v.Version)
		}
		return eq("versions", nums, []int{1, 2, 3, 4, 5})
	})
	s.check("kv v2: Delete soft-deletes the newest version; Get then has no data and a deletion time", func() error {
		if err := kv.Delete(s.ctx, "app/db"); err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(truth(got.Data == nil, "data still readable: %v", got.Data), eq("version", got.VersionMetadata.Version, 5),
			truth(!got.VersionMetadata.DeletionTime.IsZero(), "no deletion_time"))
	})
	s.check("kv v2: Undelete brings the version back", func() error {
		if err := kv.Undelete(s.ctx, "app/db", []int{5}); err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("port", got.Data["port"], "5432"), truth(got.VersionMetadata.DeletionTime.IsZero(), "deletion_time still set"))
	})
	s.check("kv v2: DeleteVersions soft-deletes an older version", func() error {
		if err := kv.DeleteVersions(s.ctx, "app/db", []int{2}); err != nil {
			return err
		}
		got, err := kv.GetVersion(s.ctx, "app/db", 2)
		if err != nil {
			return err
		}
		return all(truth(got.Data == nil, "version 2 still readable"), truth(!got.VersionMetadata.DeletionTime.IsZero(), "no deletion_time"))
	})
	s.check("kv v2: Destroy removes a version for good", func() error {
		if err := kv.Destroy(s.ctx, "app/db", []int{1}); err != nil {
			return err
		}
		got, err := kv.GetVersion(s.ctx, "app/db", 1)
		if err != nil {
			return err
		}
		if err := all(truth(got.Data == nil, "version 1 still readable"), eq("destroyed", got.VersionMetadata.Destroyed, true)); err != nil {
			return err
		}
		// A destroyed version cannot be undeleted.
		if err := kv.Undelete(s.ctx, "app/db", []int{1}); err != nil {
			return err
		}
		again, err := kv.GetVersion(s.ctx, "app/db", 1)
		return all(err, truth(again.Data == nil, "destroyed version came back"))
	})
	s.check("kv v2: Rollback writes an older version's data as a new version", func() error {
		// Version 3 (the first patch) had host; versions 4 and 5 do not.
		rolled, err := kv.Rollback(s.ctx, "app/db", 3)
		if err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("version", rolled.VersionMetadata.Version, 6), eq("host", got.Data["host"], "db.internal"))
	})
	s.check("kv v2: GetMetadata shows versions, deletion and destruction", func() error {
		md, err := kv.GetMetadata(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("current_version", md.CurrentVersion, 6), eq("oldest_version", md.OldestVersion, 0),
			eq("versions", len(md.Versions), 6), eq("v1 destroyed", md.Versions["1"].Destroyed, true),
			truth(!md.Versions["2"].DeletionTime.IsZero(), "v2 has no deletion_time"),
			truth(!md.CreatedTime.IsZero() && !md.UpdatedTime.IsZero(), "created/updated time zero"))
	})
	s.check("kv v2: PutMetadata sets max_versions, cas_required, delete_version_after, custom_metadata", func() error {
		err := kv.PutMetadata(s.ctx, "app/db", api.KVMetadataPutInput{MaxVersions: 10, CASRequired: true,
			DeleteVersionAfter: 48 * time.Hour, CustomMetadata: map[string]any{"owner": "team-a"}})
		if err != nil {
			return err
		}
		md, err := kv.GetMetadata(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("max_versions", md.MaxVersions, 10), eq("cas_required", md.CASRequired, true),
			eq("delete_version_after", md.DeleteVersionAfter, 48*time.Hour), eq("custom_metadata", md.CustomMetadata, map[string]any{"owner": "team-a"}))
	})
	s.check("kv v2: cas_required refuses a put without cas", func() error {
		_, err := kv.Put(s.ctx, "app/db", map[string]any{"x": "y"})
		return status("put without cas", err, 400)
	})
	s.check("kv v2: PatchMetadata changes one field and keeps the rest", func() error {
		off := false
		if err := kv.PatchMetadata(s.ctx, "app/db", api.KVMetadataPatchInput{CASRequired: &off}); err != nil {
			return err
		}
		md, err := kv.GetMetadata(s.ctx, "app/db")
		if err != nil {
			return err
		}
		got, err := kv.Get(s.ctx, "app/db")
		if err != nil {
			return err
		}
		return all(eq("cas_required", md.CASRequired, false), eq("max_versions kept", md.MaxVersions, 10),
			eq("custom_metadata kept", md.CustomMetadata, map[string]any{"owner": "team-a"}),
			eq("custom_metadata on a read", got.CustomMetadata, map[string]any{"owner": "team-a"}))
	})
	s.check("kv v2: list metadata keys, folders with a trailing slash", func() error {
		if _, err := kv.Put(s.ctx, "app/nested/one", map[string]any{"a": "b"}); err != nil {
			return err
		}
		list, err := s.root.Logical().List("go-kv2/metadata/app")
		if err != nil {
			return err
		}
		return eq("keys", stringsOf(list.Data["keys"]), []string{"db", "nested/"})
	})
	s.check("kv v2: list of an empty folder is nil, not an error", func() error {
		list, err := s.root.Logical().List("go-kv2/metadata/nothing-here")
		return all(err, truth(list == nil, "want nil, got %v", list))
	})
	s.check("kv v2: DeleteMetadata removes every version", func() error {
		if err := kv.DeleteMetadata(s.ctx, "app/db"); err != nil {
			return err
		}
		_, err := kv.Get(s.ctx, "app/db")
		if err := truth(errors.Is(err, api.ErrSecretNotFound), "get: want ErrSecretNotFound, got %v", err); err != nil {
			return err
		}
		_, err = kv.GetMetadata(s.ctx, "app/db")
		return truth(errors.Is(err, api.ErrSecretNotFound), "metadata: want ErrSecretNotFound, got %v", err)
	})
	s.check("kv v2: the mount's config is written and read through Logical()", func() error {
		if _, err := s.root.Logical().Write("go-kv2/config", map[string]any{"max_versions": 20, "delete_version_after": "72h"}); err != nil {
			return err
		}
		cfg, err := s.root.Logical().Read("go-kv2/config")
		if err != nil {
			return err
		}
		if err := all(eq("max_versions", cfg.Data["max_versions"], any(jsonNumber(20))), eq("cas_required", cfg.Data["cas_required"], false),
			eq("delete_version_after", cfg.Data["delete_version_after"], "72h0m0s")); err != nil {
			return err
		}
		// Back to no automatic deletion, for the checks that write here later.
		if _, err := s.root.Logical().Write("go-kv2/config", map[string]any{"delete_version_after": "0s"}); err != nil {
			return err
		}
		cfg, err = s.root.Logical().Read("go-kv2/config")
		return all(err, eq("delete_version_after reset", cfg.Data["delete_version_after"], "0s"), eq("max_versions kept", cfg.Data["max_versions"], any(jsonNumber(20))))
	})
}
