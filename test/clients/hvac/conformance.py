"""Drives a Cofre server with hvac, the Python Vault client, and checks every answer is what hvac expects of Vault.

Prints one line per check, "ok   <what>" or "FAIL <what>: <why>", then "checks: N passed, M failed", and exits 1
when a check failed. Reads VAULT_ADDR and VAULT_TOKEN (a root token); COFRE_AUDIT_FILE names the file the audit
checks enable a file device on; COFRE_PG_HOST, COFRE_PG_PORT, COFRE_PG_USER and COFRE_PG_PASSWORD, when set, name a
PostgreSQL superuser for the database lease checks. COFRE_UNSEAL_KEYS (comma-separated) holds the server's unseal key
shares, for generate-root and rekey; the rekey runs last, since it replaces them and seals the server once.
"""

import base64
import hashlib
import json
import os
import socket
import sys
import time
import traceback

import hvac
from hvac import exceptions

ADDR = os.environ.get("VAULT_ADDR", "")
ROOT = os.environ.get("VAULT_TOKEN", "")
SYSTEM_TTL = 768 * 3600
results = {"passed": 0, "failed": 0}


def check(name):
    """Runs the decorated function at once as one named check: an exception (an assertion) fails it."""

    def run(fn):
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - every failure is reported, whatever its kind
            results["failed"] += 1
            why = f"{type(err).__name__}: {err}" if str(err) else traceback.format_exc(limit=2).strip()
            print(f"FAIL {name}: {why}".replace("\n", " | "), flush=True)
        else:
            results["passed"] += 1
            print(f"ok   {name}", flush=True)
        return fn

    return run


def eq(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def truth(cond, msg):
    if not cond:
        raise AssertionError(msg)


def raises(kind, fn, *args, **kwargs):
    """Calls fn and fails unless it raises hvac's exception of this kind (the status code it stands for)."""
    try:
        fn(*args, **kwargs)
    except kind as err:
        return err
    except exceptions.VaultError as err:
        raise AssertionError(f"want {kind.__name__}, got {type(err).__name__}: {err}") from err
    raise AssertionError(f"want {kind.__name__}, got no error")


def client(token=None):
    return hvac.Client(url=ADDR, token=token)


root = client(ROOT)
state = {}

# --- sys: the status paths a client reads first ---------------------------------------------------------------


@check("sys/health: initialised, unsealed, active (GET and HEAD)")
def _():
    h = root.sys.read_health_status(method="GET")
    eq("initialized", h["initialized"], True)
    eq("sealed", h["sealed"], False)
    eq("standby", h["standby"], False)
    truth(h["version"], "no version")
    eq("HEAD status", root.sys.read_health_status().status_code, 200)


@check("sys/seal-status: shamir, unsealed")
def _():
    st = root.sys.read_seal_status()
    eq("type", st["type"], "shamir")
    eq("sealed", st["sealed"], False)
    truth(1 <= st["t"] <= st["n"], f"t={st['t']} n={st['n']}")
    eq("is_sealed", root.sys.is_sealed(), False)


@check("sys/leader: this node leads")
def _():
    leader = root.sys.read_leader_status()
    truth(not leader["ha_enabled"] or leader["is_self"], f"leader {leader}")


@check("sys/key-status: term and install time")
def _():
    k = root.sys.get_encryption_key_status()["data"]
    truth(k["term"] >= 1, f"term {k['term']}")
    truth(k["install_time"], "no install_time")


# --- mounts ---------------------------------------------------------------------------------------------------


@check("sys/mounts: enable kv with hvac's defaults")
def _():
    root.sys.enable_secrets_engine("kv", path="py-mount")


@check("sys/mounts: list shows the mount with type, accessor and its own TTLs")
def _():
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    m = mounts["py-mount/"]
    eq("type", m["type"], "kv")
    truth(m["accessor"], "no accessor")
    eq("ttls", [m["config"]["default_lease_ttl"], m["config"]["max_lease_ttl"]], [0, 0])


@check("sys/mounts/:path/tune: tune TTLs and description, read them back")
def _():
    root.sys.tune_mount_configuration("py-mount", default_lease_ttl="1h", max_lease_ttl="2h", description="tuned")
    cfg = root.sys.read_mount_configuration("py-mount")["data"]
    eq("ttls", [cfg["default_lease_ttl"], cfg["max_lease_ttl"]], [3600, 7200])
    eq("description", cfg["description"], "tuned")


@check("sys/mounts/:path/tune: a partial tune changes one field only")
def _():
    root.sys.tune_mount_configuration("py-mount", default_lease_ttl="30m")
    cfg = root.sys.read_mount_configuration("py-mount")["data"]
    eq("ttls", [cfg["default_lease_ttl"], cfg["max_lease_ttl"]], [1800, 7200])


@check('sys/mounts/:path/tune: "system" resets the TTLs to the system default')
def _():
    root.sys.tune_mount_configuration("py-mount", default_lease_ttl="system", max_lease_ttl="system")
    cfg = root.sys.read_mount_configuration("py-mount")["data"]
    eq("ttls", [cfg["default_lease_ttl"], cfg["max_lease_ttl"]], [SYSTEM_TTL, SYSTEM_TTL])


@check("sys/mounts: enable with config TTLs and options; retrieve_mount_option reads an option")
def _():
    config = {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}
    root.sys.enable_secrets_engine("kv", path="py-mount-ttl", config=config, options={"version": "2"})
    m = root.sys.list_mounted_secrets_engines()["data"]["py-mount-ttl/"]
    eq("ttls", [m["config"]["default_lease_ttl"], m["config"]["max_lease_ttl"]], [3600, 7200])
    eq("version", root.sys.retrieve_mount_option("py-mount-ttl", "version"), "2")
    root.sys.disable_secrets_engine("py-mount-ttl")


@check("sys/mounts: a taken path and an unknown type are refused (InvalidRequest)")
def _():
    raises(exceptions.InvalidRequest, root.sys.enable_secrets_engine, "kv", path="py-mount")
    raises(exceptions.InvalidRequest, root.sys.enable_secrets_engine, "no-such-engine", path="py-nope")


@check("sys/mounts/:path: disable removes the mount")
def _():
    root.sys.disable_secrets_engine("py-mount")
    truth("py-mount/" not in root.sys.list_mounted_secrets_engines()["data"], "still listed")


# --- auth methods ---------------------------------------------------------------------------------------------


@check("sys/auth: enable userpass and approle")
def _():
    root.sys.enable_auth_method("userpass", path="py-userpass")
    root.sys.enable_auth_method("approle", path="py-approle", description="apps")


@check("sys/auth: list shows both methods and token/")
def _():
    methods = root.sys.list_auth_methods()["data"]
    eq("userpass", methods["py-userpass/"]["type"], "userpass")
    eq("approle", methods["py-approle/"]["type"], "approle")
    eq("approle description", methods["py-approle/"]["description"], "apps")
    eq("token", methods["token/"]["type"], "token")


@check("sys/auth/:path/tune: tune_auth_method sets the TTLs its tokens get")
def _():
    root.sys.tune_auth_method("py-userpass", default_lease_ttl="10m", max_lease_ttl="1h")
    cfg = root.sys.read_auth_method_tuning("py-userpass")["data"]
    eq("ttls", [cfg["default_lease_ttl"], cfg["max_lease_ttl"]], [600, 3600])


@check("auth/userpass: create a user and log in through hvac, which then uses the token")
def _():
    root.auth.userpass.create_or_update_user("alice", password="py-pw-1", mount_point="py-userpass", policies=["py-reader"])
    c = client()
    login = c.auth.userpass.login("alice", "py-pw-1", mount_point="py-userpass")
    auth = login["auth"]
    eq("client token in use", c.token, auth["client_token"])
    eq("policies", auth["policies"], ["default", "py-reader"])
    eq("metadata.username", auth["metadata"]["username"], "alice")
    eq("lease_duration from the tune", auth["lease_duration"], 600)
    eq("is_authenticated", c.is_authenticated(), True)
    self_ = c.auth.token.lookup_self()["data"]
    eq("path", self_["path"], "auth/py-userpass/login/alice")


@check("auth/userpass: a wrong password is InvalidRequest")
def _():
    raises(exceptions.InvalidRequest, client().auth.userpass.login, "alice", "wrong", mount_point="py-userpass")


@check("auth/approle: role, role ID, secret ID, login")
def _():
    root.auth.approle.create_or_update_approle("app", token_policies=["py-reader"], token_ttl="20m", mount_point="py-approle")
    role_id = root.auth.approle.read_role_id("app", mount_point="py-approle")["data"]["role_id"]
    secret = root.auth.approle.generate_secret_id("app", mount_point="py-approle")["data"]
    truth(secret["secret_id"] and secret["secret_id_accessor"], f"secret id {secret.keys()}")
    c = client()
    auth = c.auth.approle.login(role_id, secret["secret_id"], mount_point="py-approle")["auth"]
    eq("client token in use", c.token, auth["client_token"])
    eq("metadata.role_name", auth["metadata"]["role_name"], "app")
    eq("lease_duration", auth["lease_duration"], 1200)
    raises(exceptions.InvalidRequest, client().auth.approle.login, role_id, "0" * 36, mount_point="py-approle")
    state["approle"] = c


@check("sys/auth/:path: disabling a method revokes its tokens")
def _():
    root.sys.disable_auth_method("py-approle")
    raises(exceptions.Forbidden, state["approle"].auth.token.lookup_self)
    truth("py-approle/" not in root.sys.list_auth_methods()["data"], "still listed")


# --- KV v1 ----------------------------------------------------------------------------------------------------

kv1 = root.secrets.kv.v1


@check("kv v1: mount, put, read, list, delete")
def _():
    root.sys.enable_secrets_engine("kv", path="py-kv1", options={"version": "1"})
    kv1.create_or_update_secret("app/db", {"user": "app", "port": 5432}, mount_point="py-kv1")
    kv1.create_or_update_secret("app/api", {"k": "v"}, mount_point="py-kv1")
    got = kv1.read_secret("app/db", mount_point="py-kv1")
    eq("data", got["data"], {"user": "app", "port": 5432})
    eq("keys", kv1.list_secrets("app", mount_point="py-kv1")["data"]["keys"], ["api", "db"])
    kv1.delete_secret("app/api", mount_point="py-kv1")
    raises(exceptions.InvalidPath, kv1.read_secret, "app/api", mount_point="py-kv1")


# --- KV v2 ----------------------------------------------------------------------------------------------------

kv2 = root.secrets.kv.v2
M = {"mount_point": "py-kv2"}


@check("kv v2: mount and write two versions")
def _():
    root.sys.enable_secrets_engine("kv", path="py-kv2", options={"version": "2"})
    eq("v1", kv2.create_or_update_secret("app/db", {"password": "pw-1", "user": "app"}, **M)["data"]["version"], 1)
    eq("v2", kv2.create_or_update_secret("app/db", {"password": "pw-2", "user": "app"}, **M)["data"]["version"], 2)


@check("kv v2: read the newest and an older version")
def _():
    got = kv2.read_secret_version("app/db", raise_on_deleted_version=True, **M)["data"]
    eq("password", got["data"]["password"], "pw-2")
    eq("version", got["metadata"]["version"], 2)
    old = kv2.read_secret_version("app/db", version=1, raise_on_deleted_version=True, **M)["data"]
    eq("old password", old["data"]["password"], "pw-1")


@check("kv v2: check-and-set with a stale version is InvalidRequest")
def _():
    raises(exceptions.InvalidRequest, kv2.create_or_update_secret, "app/db", {"x": "y"}, cas=1, **M)


@check("kv v2: patch (read, merge, write with cas) keeps the other keys")
def _():
    written = kv2.patch("app/db", {"host": "db.internal"}, **M)
    eq("version", written["data"]["version"], 3)
    got = kv2.read_secret("app/db", **M)["data"]["data"]
    eq("data", got, {"password": "pw-2", "user": "app", "host": "db.internal"})


@check("kv v2: soft delete, then the read says deleted (InvalidPath, or the version with deletion_time)")
def _():
    kv2.delete_latest_version_of_secret("app/db", **M)
    raises(exceptions.InvalidPath, kv2.read_secret_version, "app/db", raise_on_deleted_version=True, **M)
    got = kv2.read_secret_version("app/db", raise_on_deleted_version=False, **M)["data"]
    eq("data", got["data"], None)
    truth(got["metadata"]["deletion_time"], "no deletion_time")


@check("kv v2: undelete brings it back")
def _():
    kv2.undelete_secret_versions("app/db", [3], **M)
    got = kv2.read_secret_version("app/db", raise_on_deleted_version=True, **M)["data"]
    eq("host", got["data"]["host"], "db.internal")
    eq("deletion_time", got["metadata"]["deletion_time"], "")


@check("kv v2: delete an older version, destroy another")
def _():
    kv2.delete_secret_versions("app/db", [2], **M)
    deleted = kv2.read_secret_version("app/db", version=2, raise_on_deleted_version=False, **M)["data"]
    eq("v2 data", deleted["data"], None)
    kv2.destroy_secret_versions("app/db", [1], **M)
    # A destroyed version has no deletion_time, so hvac raises InvalidPath even when told not to for deleted ones;
    # the 404 still carries the version's metadata, as Vault's does.
    err = raises(exceptions.InvalidPath, kv2.read_secret_version, "app/db", version=1, raise_on_deleted_version=False, **M)
    eq("v1 destroyed", err.json["data"]["metadata"]["destroyed"], True)
    eq("v1 data", err.json["data"]["data"], None)
    kv2.undelete_secret_versions("app/db", [1], **M)
    raises(exceptions.InvalidPath, kv2.read_secret_version, "app/db", version=1, raise_on_deleted_version=False, **M)


@check("kv v2: metadata lists every version, deleted and destroyed")
def _():
    md = kv2.read_secret_metadata("app/db", **M)["data"]
    eq("current_version", md["current_version"], 3)
    eq("versions", sorted(md["versions"].keys()), ["1", "2", "3"])
    eq("v1 destroyed", md["versions"]["1"]["destroyed"], True)
    truth(md["versions"]["2"]["deletion_time"], "v2 has no deletion_time")


@check("kv v2: update_metadata sets max_versions, cas_required and custom_metadata")
def _():
    kv2.update_metadata("app/db", max_versions=10, cas_required=True, custom_metadata={"owner": "team-a"}, **M)
    md = kv2.read_secret_metadata("app/db", **M)["data"]
    eq("max_versions", md["max_versions"], 10)
    eq("cas_required", md["cas_required"], True)
    eq("custom_metadata", md["custom_metadata"], {"owner": "team-a"})
    raises(exceptions.InvalidRequest, kv2.create_or_update_secret, "app/db", {"x": "y"}, **M)
    kv2.update_metadata("app/db", cas_required=False, **M)


@check("kv v2: list, folders with a trailing slash; an empty folder is InvalidPath")
def _():
    kv2.create_or_update_secret("app/nested/one", {"a": "b"}, **M)
    eq("keys", kv2.list_secrets("app", **M)["data"]["keys"], ["db", "nested/"])
    raises(exceptions.InvalidPath, kv2.list_secrets, "nothing-here", **M)


@check("kv v2: configure the mount and read it back")
def _():
    kv2.configure(max_versions=7, **M)
    eq("max_versions", kv2.read_configuration(**M)["data"]["max_versions"], 7)


@check("kv v2: delete metadata and all versions")
def _():
    kv2.delete_metadata_and_all_versions("app/db", **M)
    raises(exceptions.InvalidPath, kv2.read_secret_version, "app/db", raise_on_deleted_version=True, **M)
    raises(exceptions.InvalidPath, kv2.read_secret_metadata, "app/db", **M)


# --- tokens ---------------------------------------------------------------------------------------------------

tokens = root.auth.token


@check("auth/token/create: hvac's defaults as root")
def _():
    auth = tokens.create()["auth"]
    eq("policies", auth["policies"], ["root"])
    eq("lease_duration", auth["lease_duration"], 0)
    truth(auth["accessor"], "no accessor")
    look = tokens.lookup(auth["client_token"])["data"]
    # hvac sends display_name "token", which Vault prefixes with "token-" as it does every display name.
    eq("display_name", look["display_name"], "token-token")
    eq("type", look["type"], "service")
    tokens.revoke(auth["client_token"])


@check("auth/token/create: policies, TTL, metadata")
def _():
    auth = tokens.create(policies=["py-reader"], ttl="1h", meta={"team": "a"})["auth"]
    eq("policies", auth["policies"], ["default", "py-reader"])
    eq("lease_duration", auth["lease_duration"], 3600)
    eq("renewable", auth["renewable"], True)
    look = tokens.lookup(auth["client_token"])["data"]
    eq("meta", look["meta"], {"team": "a"})
    truth(3590 < look["ttl"] <= 3600, f"ttl {look['ttl']}")


@check("auth/token/create: a child and orphans (create_orphan, no_parent)")
def _():
    parent = tokens.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    as_parent = client(parent)
    child = as_parent.auth.token.create(policies=["py-reader"], ttl="2h")["auth"]["client_token"]
    orphan = as_parent.auth.token.create_orphan(policies=["py-reader"], ttl="1h")["auth"]
    no_parent = tokens.create(policies=["py-reader"], ttl="1h", no_parent=True)["auth"]["client_token"]
    child_look = tokens.lookup(child)["data"]
    eq("child orphan", child_look["orphan"], False)
    truth(child_look["ttl"] <= 3600, f"child outlives its parent: {child_look['ttl']}")
    eq("auth.orphan", orphan["orphan"], True)
    eq("no_parent orphan", tokens.lookup(no_parent)["data"]["orphan"], True)
    state.update(parent=parent, child=child, orphan=orphan["client_token"])


@check("auth/token/lookup-self, renew, renew-self")
def _():
    c = client(state["child"])
    eq("lookup-self id", c.auth.token.lookup_self()["data"]["id"], state["child"])
    eq("renew", tokens.renew(state["child"], increment="30m")["auth"]["lease_duration"], 1800)
    eq("renew-self", c.auth.token.renew_self(increment=600)["auth"]["lease_duration"], 600)


@check("auth/token/revoke: the child goes with its parent, the orphan stays")
def _():
    tokens.revoke(state["parent"])
    raises(exceptions.Forbidden, tokens.lookup, state["child"])
    eq("orphan lives", tokens.lookup(state["orphan"])["data"]["orphan"], True)


@check("auth/token/revoke-orphan: children of a revoked token live on as orphans")
def _():
    parent = tokens.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    child = client(parent).auth.token.create(policies=["py-reader"], ttl="10m")["auth"]["client_token"]
    tokens.revoke_and_orphan_children(parent)
    raises(exceptions.Forbidden, tokens.lookup, parent)
    eq("orphan", tokens.lookup(child)["data"]["orphan"], True)


@check("auth/token/revoke-self")
def _():
    c = client(tokens.create(policies=["py-reader"], ttl="10m")["auth"]["client_token"])
    c.auth.token.revoke_self()
    raises(exceptions.Forbidden, c.auth.token.lookup_self)
    eq("is_authenticated", c.is_authenticated(), False)


@check("auth/token/accessors: list, lookup, renew and revoke by accessor")
def _():
    auth = tokens.create(policies=["py-reader"], ttl="10m")["auth"]
    accessor = auth["accessor"]
    truth(accessor in tokens.list_accessors()["data"]["keys"], "accessor not listed")
    look = tokens.lookup_accessor(accessor)["data"]
    eq("accessor", look["accessor"], accessor)
    eq("id hidden", look["id"], "")
    eq("renewed", tokens.renew_accessor(accessor, increment=1200)["auth"]["lease_duration"], 1200)
    tokens.revoke_accessor(accessor)
    raises(exceptions.Forbidden, tokens.lookup, auth["client_token"])


@check("auth/token: num_uses runs out")
def _():
    c = client(tokens.create(policies=["py-reader"], ttl="10m", num_uses=2)["auth"]["client_token"])
    c.auth.token.lookup_self()
    c.auth.token.lookup_self()
    raises(exceptions.Forbidden, c.auth.token.lookup_self)


# --- policies -------------------------------------------------------------------------------------------------

READER = """path "py-kv2/data/shared/*" {
  capabilities = ["read"]
}

path "py-kv2/metadata/shared/*" {
  capabilities = ["list"]
}
"""


@check("sys/policy: create, read, list")
def _():
    root.sys.create_or_update_policy("py-reader", READER)
    eq("rules", root.sys.read_policy("py-reader")["data"]["rules"], READER)
    names = root.sys.list_policies()["data"]["policies"]
    truth({"py-reader", "default", "root"} <= set(names), f"names {names}")


@check("sys/policy: a policy given as a dict is sent as JSON and read back")
def _():
    root.sys.create_or_update_policy("py-json", {"path": {"py-kv2/data/json/*": {"capabilities": ["read"]}}})
    rules = root.sys.read_policy("py-json")["data"]["rules"]
    eq("rules", json.loads(rules), {"path": {"py-kv2/data/json/*": {"capabilities": ["read"]}}})
    root.sys.delete_policy("py-json")


@check("sys/policy: invalid HCL is InvalidRequest")
def _():
    raises(exceptions.InvalidRequest, root.sys.create_or_update_policy, "py-broken", 'path "x" { capabilities = ')


@check("policy: a limited token reads and lists what its policy allows, and is Forbidden elsewhere")
def _():
    kv2.create_or_update_secret("shared/one", {"v": "1"}, **M)
    limited = client(tokens.create(policies=["py-reader"], ttl="10m")["auth"]["client_token"])
    eq("read", limited.secrets.kv.v2.read_secret_version("shared/one", raise_on_deleted_version=True, **M)["data"]["data"], {"v": "1"})
    eq("list", limited.secrets.kv.v2.list_secrets("shared", **M)["data"]["keys"], ["one"])
    raises(exceptions.Forbidden, limited.secrets.kv.v2.create_or_update_secret, "shared/one", {"v": "2"}, **M)
    raises(exceptions.Forbidden, limited.secrets.kv.v2.read_secret_version, "private/one", raise_on_deleted_version=True, **M)
    raises(exceptions.Forbidden, limited.sys.list_mounted_secrets_engines)
    raises(exceptions.Forbidden, limited.sys.create_or_update_policy, "py-reader", 'path "*" { capabilities = ["sudo"] }')
    raises(exceptions.Forbidden, limited.auth.token.create, policies=["root"])
    state["limited"] = limited


@check("sys/capabilities*: by token, by accessor and by the token itself, over several paths")
def _():
    limited = state["limited"]
    token = limited.token
    accessor = limited.auth.token.lookup_self()["data"]["accessor"]
    paths = ["py-kv2/data/shared/one", "py-kv2/metadata/shared/one", "py-kv2/data/private/one"]
    want = {paths[0]: ["read"], paths[1]: ["list"], paths[2]: ["deny"]}
    for name, answer in [
        ("by token", root.sys.get_capabilities(paths, token=token)),
        ("by accessor", root.sys.get_capabilities(paths, accessor=accessor)),
        ("self", limited.sys.get_capabilities(paths)),
    ]:
        eq(name, {p: answer[p] for p in paths}, want)
        # As Vault: the "capabilities" key (for old clients) only when one path is asked about.
        truth("capabilities" not in answer, f"{name}: capabilities for several paths")
    eq("one path", root.sys.get_capabilities(paths[:1], token=token)["capabilities"], ["read"])


@check("sys/policy: delete it, and the token loses its access; root and default stay")
def _():
    root.sys.delete_policy("py-reader")
    truth("py-reader" not in root.sys.list_policies()["data"]["policies"], "still listed")
    raises(exceptions.Forbidden, state["limited"].secrets.kv.v2.read_secret_version, "shared/one", raise_on_deleted_version=True, **M)
    raises(exceptions.InvalidRequest, root.sys.delete_policy, "root")
    raises(exceptions.InvalidRequest, root.sys.delete_policy, "default")


# --- leases ---------------------------------------------------------------------------------------------------


def bob_login():
    c = client()
    c.auth.userpass.login("bob", "lease-pw-1", mount_point="py-leases")
    return c


@check("sys/leases: a login's token lease, looked up")
def _():
    root.sys.enable_auth_method("userpass", path="py-leases")
    root.auth.userpass.create_or_update_user("bob", password="lease-pw-1", mount_point="py-leases", token_ttl="1h")
    state["bob"] = bob_login()
    keys = root.sys.list_leases("auth/py-leases/login/bob/")["data"]["keys"]
    eq("leases", len(keys), 1)
    lease_id = "auth/py-leases/login/bob/" + keys[0]
    lease = root.sys.read_lease(lease_id)["data"]
    eq("id", lease["id"], lease_id)
    eq("renewable", lease["renewable"], True)
    truth(3590 < lease["ttl"] <= 3600, f"ttl {lease['ttl']}")
    state["lease"] = lease_id


@check("sys/leases/renew: a token's lease is renewed through auth/token, not here")
def _():
    err = raises(exceptions.InvalidRequest, root.sys.renew_lease, state["lease"], increment=600)
    truth("tokens cannot be renewed through this endpoint" in str(err), f"error {err}")


@check("sys/leases/revoke and revoke-prefix revoke tokens")
def _():
    root.sys.revoke_lease(state["lease"])
    raises(exceptions.Forbidden, state["bob"].auth.token.lookup_self)
    a, b = bob_login(), bob_login()
    root.sys.revoke_prefix("auth/py-leases/")
    raises(exceptions.Forbidden, a.auth.token.lookup_self)
    raises(exceptions.Forbidden, b.auth.token.lookup_self)
    raises(exceptions.InvalidRequest, root.sys.read_lease, "auth/py-leases/login/bob/nope")


if os.environ.get("COFRE_PG_HOST"):

    @check("database: mount, connection, role; creds under a renewable lease")
    def _():
        root.sys.enable_secrets_engine("database", path="py-db")
        url = "postgresql://{{username}}:{{password}}@%s:%s/postgres?sslmode=disable" % (
            os.environ["COFRE_PG_HOST"],
            os.environ["COFRE_PG_PORT"],
        )
        root.secrets.database.configure(
            "pg",
            "postgresql-database-plugin",
            connection_url=url,
            username=os.environ["COFRE_PG_USER"],
            password=os.environ["COFRE_PG_PASSWORD"],
            allowed_roles=["ro"],
            mount_point="py-db",
        )
        creation = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]
        root.secrets.database.create_role("ro", "pg", creation, default_ttl="1h", max_ttl="2h", mount_point="py-db")
        creds = root.secrets.database.generate_credentials("ro", mount_point="py-db")
        truth(creds["lease_id"].startswith("py-db/creds/ro/"), f"lease_id {creds['lease_id']}")
        eq("lease_duration", creds["lease_duration"], 3600)
        eq("renewable", creds["renewable"], True)
        state["creds"] = creds

    @check("sys/leases: lookup, renew and revoke a credential's lease")
    def _():
        lease_id = state["creds"]["lease_id"]
        eq("lookup id", root.sys.read_lease(lease_id)["data"]["id"], lease_id)
        renewed = root.sys.renew_lease(lease_id, increment=600)
        eq("renewed lease_id", renewed["lease_id"], lease_id)
        eq("renewed lease_duration", renewed["lease_duration"], 600)
        root.sys.revoke_lease(lease_id)
        raises(exceptions.InvalidRequest, root.sys.read_lease, lease_id)
        other = root.secrets.database.generate_credentials("ro", mount_point="py-db")["lease_id"]
        root.sys.revoke_prefix("py-db/creds/ro")
        raises(exceptions.InvalidRequest, root.sys.read_lease, other)


# --- audit ----------------------------------------------------------------------------------------------------

AUDIT_FILE = os.environ.get("COFRE_AUDIT_FILE", "")


@check("sys/audit: enable a file device and list it")
def _():
    truth(AUDIT_FILE, "COFRE_AUDIT_FILE is not set")
    root.sys.enable_audit_device("file", description="hvac", options={"file_path": AUDIT_FILE}, path="py-file")
    device = root.sys.list_enabled_audit_devices()["data"]["py-file/"]
    eq("type", device["type"], "file")
    eq("description", device["description"], "hvac")
    eq("file_path", device["options"]["file_path"], AUDIT_FILE)


@check("audit: the file records a token's request and response, the token and values hashed")
def _():
    token = tokens.create(policies=["root"], ttl="10m")["auth"]["client_token"]
    value = "audit-probe-value-7c2e"
    client(token).secrets.kv.v2.create_or_update_secret("audit/probe", {"v": value}, **M)
    hashed = root.sys.calculate_hash("py-file", token)["data"]["hash"]
    truth(hashed.startswith("hmac-sha256:"), f"hash {hashed}")
    with open(AUDIT_FILE, encoding="utf-8") as f:
        raw = f.read()
    truth(token not in raw and value not in raw, "the audit file holds the token or the value in clear")
    kinds = set()
    for line in raw.splitlines():
        entry = json.loads(line)
        if entry.get("request", {}).get("path") != "py-kv2/data/audit/probe":
            continue
        eq("client_token", entry["auth"]["client_token"], hashed)
        truth(entry["request"]["data"]["data"]["v"].startswith("hmac-sha256:"), "value not hashed")
        kinds.add(entry["type"])
    eq("entries", kinds, {"request", "response"})


@check("sys/audit: disable the device")
def _():
    root.sys.disable_audit_device("py-file")
    truth("py-file/" not in root.sys.list_enabled_audit_devices()["data"], "still listed")


# --- response wrapping and the cubbyhole ----------------------------------------------------------------------


@check("wrapping: read(wrap_ttl=...) answers wrap_info only; sys.unwrap gives the original once")
def _():
    root.sys.enable_secrets_engine("kv", path="py-wrap", options={"version": "1"})
    secret = {"password": "py-wrapped-1", "user": "app"}
    kv1.create_or_update_secret("app", secret, mount_point="py-wrap")
    wrapped = root.read("py-wrap/app", wrap_ttl="5m")
    info = wrapped["wrap_info"]
    eq("data", wrapped["data"], None)
    eq("ttl", info["ttl"], 300)
    eq("creation_path", info["creation_path"], "py-wrap/app")
    truth(info["token"] and info["accessor"], f"wrap_info {info}")
    eq("unwrapped", root.sys.unwrap(info["token"])["data"], secret)
    raises(exceptions.InvalidRequest, root.sys.unwrap, info["token"])


@check("sys/wrapping/wrap: sys.wrap wraps any data; lookup needs no token; the holder unwraps it with it as its token")
def _():
    token = root.sys.wrap({"k": "py-wrap-2"}, ttl=600)["wrap_info"]["token"]
    look = client().write_data("sys/wrapping/lookup", data={"token": token})["data"]
    eq("creation_path", look["creation_path"], "sys/wrapping/wrap")
    eq("creation_ttl", look["creation_ttl"], 600)
    holder = client(token)
    eq("unwrapped", holder.sys.unwrap()["data"], {"k": "py-wrap-2"})
    raises(exceptions.InvalidRequest, root.sys.unwrap, token)


@check("sys/wrapping/rewrap: a new token for the same data, the old one ends")
def _():
    old = root.sys.wrap({"k": "py-wrap-3"}, ttl=600)["wrap_info"]["token"]
    new = root.write_data("sys/wrapping/rewrap", data={"token": old})["wrap_info"]
    eq("ttl", new["ttl"], 600)
    raises(exceptions.InvalidRequest, root.sys.unwrap, old)
    eq("unwrapped", root.sys.unwrap(new["token"])["data"], {"k": "py-wrap-3"})


@check("wrapping: auth.token.create(wrap_ttl=...) wraps the token; wrapped_accessor names it")
def _():
    info = tokens.create(policies=["py-wrapped"], ttl="10m", wrap_ttl="5m")["wrap_info"]
    auth = client().sys.unwrap(info["token"])["auth"]
    eq("accessor", auth["accessor"], info["wrapped_accessor"])
    eq("policies", auth["policies"], ["default", "py-wrapped"])
    eq("lookup", tokens.lookup(auth["client_token"])["data"]["accessor"], info["wrapped_accessor"])


@check("cubbyhole: a token's own entries; another token sees none of them")
def _():
    a = client(tokens.create(policies=["default"], ttl="10m")["auth"]["client_token"])
    b = client(tokens.create(policies=["default"], ttl="10m")["auth"]["client_token"])
    a.write_data("cubbyhole/app/key", data={"v": "py-cubby"})
    eq("read", a.read("cubbyhole/app/key")["data"], {"v": "py-cubby"})
    eq("list", a.list("cubbyhole/app")["data"]["keys"], ["key"])
    eq("other read", b.read("cubbyhole/app/key"), None)
    eq("other list", b.list("cubbyhole/app"), None)
    a.delete("cubbyhole/app/key")
    eq("deleted", a.read("cubbyhole/app/key"), None)


@check("cubbyhole: cannot be disabled or mounted again (InvalidRequest)")
def _():
    raises(exceptions.InvalidRequest, root.sys.disable_secrets_engine, "cubbyhole")
    raises(exceptions.InvalidRequest, root.sys.enable_secrets_engine, "cubbyhole", path="py-cubby")


# --- batch tokens, token roles, tidy, revocation by creation path ---------------------------------------------

BATCH_POLICY = 'path "py-bt/*" {\n  capabilities = ["read"]\n}\n'
MINTER_POLICY = BATCH_POLICY + 'path "auth/token/create*" {\n  capabilities = ["create", "update", "sudo"]\n}\n'


@check("auth/token/create: a batch token (type=batch) reads what its policy allows, nothing else; no accessor")
def _():
    root.sys.create_or_update_policy("py-batch", BATCH_POLICY)
    root.sys.enable_secrets_engine("kv", path="py-bt", options={"version": "1"})
    kv1.create_or_update_secret("app", {"v": "py-batch-read"}, mount_point="py-bt")
    auth = tokens.create(type="batch", policies=["py-batch"], ttl="10m")["auth"]
    eq("accessor", auth["accessor"], "")
    eq("renewable", auth["renewable"], False)
    b = client(auth["client_token"])
    eq("read", b.read("py-bt/app")["data"], {"v": "py-batch-read"})
    raises(exceptions.Forbidden, b.write_data, "py-bt/app", data={"v": "no"})
    eq("type", b.auth.token.lookup_self()["data"]["type"], "batch")


@check("auth/token/create: a batch token cannot create tokens, and ends with its parent")
def _():
    root.sys.create_or_update_policy("py-batch-minter", MINTER_POLICY)
    parent = tokens.create(policies=["root"], ttl="10m")["auth"]["client_token"]
    batch = client(parent).auth.token.create(type="batch", policies=["py-batch-minter"], ttl="5m")["auth"]["client_token"]
    b = client(batch)
    err = raises(exceptions.InvalidRequest, b.auth.token.create, policies=["py-batch"], ttl="1m")
    truth("batch tokens cannot create more tokens" in str(err), f"error {err}")
    raises(exceptions.InvalidRequest, b.auth.token.create_orphan, policies=["py-batch"], ttl="1m")
    eq("read before", b.read("py-bt/app")["data"], {"v": "py-batch-read"})
    tokens.revoke(parent)
    raises(exceptions.Forbidden, b.read, "py-bt/app")


@check("auth/token/roles: create_or_update_role, read_role (sorted policies), list_roles")
def _():
    tokens.create_or_update_role("py-role", allowed_policies=["py-reader", "py-batch"], orphan=True, path_suffix="ci", token_explicit_max_ttl="2h")
    role = tokens.read_role("py-role")["data"]
    eq("allowed_policies", role["allowed_policies"], ["py-batch", "py-reader"])
    eq("orphan", role["orphan"], True)
    eq("token_explicit_max_ttl", role["token_explicit_max_ttl"], 7200)
    truth("py-role" in tokens.list_roles()["data"]["keys"], "py-role not listed")


@check("auth/token/create/:role: create(role_name=...) applies the role; other policies are refused, even for root")
def _():
    auth = tokens.create(role_name="py-role", policies=["py-reader"], ttl="5h")["auth"]
    eq("policies", auth["policies"], ["default", "py-reader"])
    eq("orphan", auth["orphan"], True)
    eq("lease_duration", auth["lease_duration"], 7200)
    look = tokens.lookup(auth["client_token"])["data"]
    eq("path", look["path"], "auth/token/create/py-role/ci")
    eq("role", look["role"], "py-role")
    raises(exceptions.InvalidRequest, tokens.create, role_name="py-role", policies=["root"])
    raises(exceptions.InvalidRequest, tokens.create, role_name="py-role", policies=["py-reader", "py-other"])
    state["role_token"] = auth["client_token"]


@check("sys/leases/revoke-prefix/auth/token/create/:role: revokes the role's tokens, not others")
def _():
    other = tokens.create(policies=["py-reader"], ttl="10m")["auth"]["client_token"]
    root.sys.revoke_prefix("auth/token/create/py-role")
    raises(exceptions.Forbidden, tokens.lookup, state["role_token"])
    eq("other lives", tokens.lookup(other)["data"]["id"], other)


@check("auth/token/roles: delete_role; creating with it is then refused")
def _():
    tokens.delete_role("py-role")
    raises(exceptions.InvalidPath, tokens.read_role, "py-role")
    raises(exceptions.InvalidRequest, tokens.create, role_name="py-role", policies=["py-reader"])


@check("auth/token/tidy: 202 with Vault's warning; live tokens survive it")
def _():
    live = tokens.create(policies=["py-reader"], ttl="10m")["auth"]["client_token"]
    resp = tokens.tidy()
    eq("status", resp.status_code, 202)
    truth("Tidy operation successfully started" in resp.json()["warnings"][0], f"warnings {resp.text}")
    eq("live", tokens.lookup(live)["data"]["id"], live)


# --- sys/remount, sys/tools, metrics, host-info, help, the KV upgrade, step-down ------------------------------


def remount(src, dst):
    """sys.move_backend starts the move; as Vault's CLI, wait on its migration status."""
    migration = root.sys.move_backend(src, dst)["data"]["migration_id"]
    for _ in range(100):
        st = root.read(f"sys/remount/status/{migration}")["data"]["migration_info"]["status"]
        if st != "in-progress":
            return st
        time.sleep(0.1)
    raise AssertionError("the move is still in progress")


@check("sys/remount: move_backend moves a secrets engine with its data; the old path is gone")
def _():
    root.sys.enable_secrets_engine("kv", path="py-mv-a", options={"version": "1"})
    kv1.create_or_update_secret("app", {"v": "py-moved"}, mount_point="py-mv-a")
    eq("status", remount("py-mv-a", "py-mv-b"), "success")
    eq("data", kv1.read_secret("app", mount_point="py-mv-b")["data"], {"v": "py-moved"})
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    truth("py-mv-a/" not in mounts and "py-mv-b/" in mounts, "mounts not moved")
    raises(exceptions.InvalidPath, kv1.read_secret, "app", mount_point="py-mv-a")


@check("sys/remount: an auth method moves (auth/a to auth/b) and logs in at the new path only")
def _():
    root.sys.enable_auth_method("userpass", path="py-mv-up")
    root.auth.userpass.create_or_update_user("carol", password="py-mv-pw", mount_point="py-mv-up")
    eq("status", remount("auth/py-mv-up", "auth/py-mv-up2"), "success")
    auth = client().auth.userpass.login("carol", "py-mv-pw", mount_point="py-mv-up2")["auth"]
    eq("username", auth["metadata"]["username"], "carol")
    raises(exceptions.VaultError, client().auth.userpass.login, "carol", "py-mv-pw", mount_point="py-mv-up")
    methods = root.sys.list_auth_methods()["data"]
    truth("py-mv-up/" not in methods and "py-mv-up2/" in methods, "method not moved")


@check("sys/remount: a taken destination and sys/ are refused (InvalidRequest)")
def _():
    root.sys.enable_secrets_engine("kv", path="py-mv-c")
    raises(exceptions.InvalidRequest, root.sys.move_backend, "py-mv-b", "py-mv-c")
    raises(exceptions.InvalidRequest, root.sys.move_backend, "sys", "py-sys")
    eq("kept", kv1.read_secret("app", mount_point="py-mv-b")["data"], {"v": "py-moved"})


@check("sys/tools/hash: the SHA-256 and SHA3-512 of the input")
def _():
    data = b"the quick brown fox"
    b64 = base64.b64encode(data).decode()
    eq("sha2-256", root.write_data("sys/tools/hash/sha2-256", data={"input": b64})["data"]["sum"], hashlib.sha256(data).hexdigest())
    got = root.write_data("sys/tools/hash", data={"input": b64, "algorithm": "sha3-512", "format": "base64"})["data"]["sum"]
    eq("sha3-512", got, base64.b64encode(hashlib.sha3_512(data).digest()).decode())


@check("sys/tools/random: as many bytes as asked, hex and base64, different each time")
def _():
    a = root.write_data("sys/tools/random/24", data={"format": "hex"})["data"]["random_bytes"]
    b = root.write_data("sys/tools/random", data={"bytes": 40})["data"]["random_bytes"]
    eq("hex bytes", len(bytes.fromhex(a)), 24)
    eq("base64 bytes", len(base64.b64decode(b)), 40)
    truth(a != root.write_data("sys/tools/random/24", data={"format": "hex"})["data"]["random_bytes"], "the same bytes twice")


@check("sys/metrics: go-metrics JSON by default, Prometheus text with format=prometheus, 400 otherwise")
def _():
    body = root.adapter.get("/v1/sys/metrics")
    eq("keys", sorted(body.keys()), ["Counters", "Gauges", "Points", "Samples", "Timestamp"])
    truth(body["Gauges"], "no gauges")
    prom = root.adapter.get("/v1/sys/metrics", params={"format": "prometheus"})
    truth("# TYPE " in prom.text, f"not Prometheus text: {prom.text[:200]}")
    truth(prom.headers["Content-Type"].startswith("text/plain"), prom.headers["Content-Type"])
    raises(exceptions.InvalidRequest, root.adapter.get, "/v1/sys/metrics", params={"format": "xml"})


@check("sys/host-info: this machine's host name, CPUs and memory")
def _():
    info = root.read("sys/host-info")["data"]
    eq("hostname", info["host"]["hostname"], socket.gethostname())
    truth(info["cpu"], "no cpu")
    truth(info["memory"]["total"] > 0, f"memory {info['memory']}")


@check("?help=1: help and the OpenAPI document of a mount's path and a sys path; a bad token is Forbidden")
def _():
    kv_help = root.adapter.get("/v1/py-bt/app", params={"help": 1})
    truth(kv_help["help"].startswith("Request:        app\nMatching Route: "), f"kv help {kv_help['help'][:200]!r}")
    truth("## DESCRIPTION" in kv_help["help"], "kv help without a description")
    truth("/py-bt/{path}" in kv_help["openapi"]["paths"], f"kv OpenAPI paths {list(kv_help['openapi']['paths'])}")
    sys_help = root.adapter.get("/v1/sys/tools/random", params={"help": 1})
    truth(sys_help["help"].startswith("Request:        tools/random\n"), f"sys help {sys_help['help'][:200]!r}")
    truth("/sys/tools/random/{source}/{urlbytes}" in sys_help["openapi"]["paths"], f"sys paths {list(sys_help['openapi']['paths'])}")
    raises(exceptions.Forbidden, client("cvs.not-a-token").adapter.get, "/v1/sys/mounts", params={"help": 1})


@check("kv: tune_mount_configuration(options version 2) upgrades a v1 mount in place; its secrets become version 1")
def _():
    root.sys.enable_secrets_engine("kv", path="py-up", options={"version": "1"})
    kv1.create_or_update_secret("app/db", {"password": "py-before"}, mount_point="py-up")
    root.sys.tune_mount_configuration("py-up", options={"version": "2"})
    eq("version option", root.sys.retrieve_mount_option("py-up", "version"), "2")
    # Vault upgrades in the background and answers a retryable 400 meanwhile; a client waits that out.
    for _ in range(100):
        try:
            got = kv2.read_secret_version("app/db", mount_point="py-up", raise_on_deleted_version=True)["data"]
            break
        except exceptions.InvalidRequest as err:
            if "Upgrading from non-versioned to versioned data" not in str(err):
                raise
            time.sleep(0.1)
    eq("data", got["data"], {"password": "py-before"})
    eq("version", got["metadata"]["version"], 1)
    eq("next", kv2.create_or_update_secret("app/db", {"password": "py-after"}, mount_point="py-up")["data"]["version"], 2)
    raises(exceptions.InvalidRequest, root.sys.tune_mount_configuration, "py-up", options={"version": "1"})


@check("sys/step-down: root steps a lone node down, and it goes on serving as the active node")
def _():
    eq("status", root.sys.step_down().status_code, 204)
    h = root.sys.read_health_status(method="GET")
    eq("standby", h["standby"], False)
    eq("read", kv1.read_secret("app", mount_point="py-bt")["data"], {"v": "py-batch-read"})


@check("sys/step-down: a token without sudo is Forbidden")
def _():
    limited = client(tokens.create(policies=["default"], ttl="5m")["auth"]["client_token"])
    raises(exceptions.Forbidden, limited.sys.step_down)


# --- transit: hvac's own transit methods ---------------------------------------------------------------------


def b64_text(text):
    return base64.b64encode(text.encode()).decode()


@check("transit: create keys of both types, read and list them")
def _():
    root.sys.enable_secrets_engine("transit", path="py-transit")
    root.secrets.transit.create_key("py-aes", mount_point="py-transit")
    root.secrets.transit.create_key("py-chacha", key_type="chacha20-poly1305", mount_point="py-transit")
    key = root.secrets.transit.read_key("py-chacha", mount_point="py-transit")["data"]
    eq("type", key["type"], "chacha20-poly1305")
    eq("versions", list(key["keys"]), ["1"])
    eq("list", sorted(root.secrets.transit.list_keys(mount_point="py-transit")["data"]["keys"]), ["py-aes", "py-chacha"])
    raises(exceptions.InvalidRequest, root.secrets.transit.create_key, "py-rsa", key_type="rsa-2048", mount_point="py-transit")


@check("transit: encrypt, decrypt (also batch), rotate, rewrap, min_decryption_version, delete")
def _():
    t = root.secrets.transit
    first = t.encrypt_data("py-aes", plaintext=b64_text("hello hvac"), mount_point="py-transit")["data"]["ciphertext"]
    truth(first.startswith("vault:v1:"), first)
    eq("decrypt", base64.b64decode(t.decrypt_data("py-aes", first, mount_point="py-transit")["data"]["plaintext"]), b"hello hvac")
    batch = t.encrypt_data("py-chacha", batch_input=[{"plaintext": b64_text("a")}, {"plaintext": b64_text("b")}], mount_point="py-transit")
    results = batch["data"]["batch_results"]
    opened = t.decrypt_data("py-chacha", batch_input=[{"ciphertext": r["ciphertext"]} for r in results], mount_point="py-transit")
    eq("batch", [base64.b64decode(r["plaintext"]) for r in opened["data"]["batch_results"]], [b"a", b"b"])
    t.rotate_key("py-aes", mount_point="py-transit")
    second = t.encrypt_data("py-aes", plaintext=b64_text("v2"), mount_point="py-transit")["data"]["ciphertext"]
    truth(second.startswith("vault:v2:"), second)
    rewrapped = t.rewrap_data("py-aes", first, mount_point="py-transit")["data"]["ciphertext"]
    truth(rewrapped.startswith("vault:v2:"), rewrapped)
    t.update_key_configuration("py-aes", min_decryption_version=2, mount_point="py-transit")
    raises(exceptions.InvalidRequest, t.decrypt_data, "py-aes", first, mount_point="py-transit")
    eq("rewrapped", base64.b64decode(t.decrypt_data("py-aes", rewrapped, mount_point="py-transit")["data"]["plaintext"]), b"hello hvac")
    raises(exceptions.InvalidRequest, t.delete_key, "py-aes", mount_point="py-transit")
    t.update_key_configuration("py-aes", deletion_allowed=True, mount_point="py-transit")
    t.delete_key("py-aes", mount_point="py-transit")
    raises(exceptions.InvalidPath, t.read_key, "py-aes", mount_point="py-transit")


# --- generate-root and, last, rekey (it replaces the key shares and seals the server once) --------------------

KEYS = [k for k in os.environ.get("COFRE_UNSEAL_KEYS", "").split(",") if k]


@check("sys/generate-root: COFRE_UNSEAL_KEYS holds at least the threshold of shares")
def _():
    st = root.sys.read_seal_status()
    truth(1 <= st["t"] <= len(KEYS), f"{len(KEYS)} keys for a threshold of {st['t']}")


@check("sys/generate-root: start, the threshold of shares, and the decoded token is a working root token")
def _():
    anon = client()
    start = anon.sys.start_root_token_generation()
    eq("otp length", len(start["otp"]), start["otp_length"])
    progress = anon.sys.read_root_generation_progress()
    eq("nonce", progress["nonce"], start["nonce"])
    eq("otp not shown again", progress["otp"], "")
    for key in KEYS[: progress["required"]]:
        r = anon.sys.generate_root(key=key, nonce=start["nonce"])
    eq("complete", r["complete"], True)
    enc = base64.b64decode(r["encoded_token"] + "=" * (-len(r["encoded_token"]) % 4))
    token = bytes(a ^ b for a, b in zip(enc, start["otp"].encode())).decode()
    eq("policies", client(token).auth.token.lookup_self()["data"]["policies"], ["root"])
    eq("started after", anon.sys.read_root_generation_progress()["started"], False)
    tokens.revoke(token)


@check("sys/generate-root: a wrong nonce and a second start are refused; cancel ends the attempt")
def _():
    anon = client()
    start = anon.sys.start_root_token_generation()
    raises(exceptions.InvalidRequest, anon.sys.generate_root, key=KEYS[0], nonce="not-the-nonce")
    raises(exceptions.InvalidRequest, anon.sys.start_root_token_generation)
    anon.sys.cancel_root_generation()
    eq("started", anon.sys.read_root_generation_progress()["started"], False)
    raises(exceptions.InvalidRequest, anon.sys.generate_root, key=KEYS[0], nonce=start["nonce"])


@check("sys/rekey: start_rekey and rekey_multi give new shares; after a seal the new ones unseal, the old ones do not")
def _():
    anon = client()
    threshold = root.sys.read_seal_status()["t"]
    start = anon.sys.start_rekey(secret_shares=5, secret_threshold=2)
    progress = anon.sys.read_rekey_progress()
    eq("started", [start["started"], progress["n"], progress["t"]], [True, 5, 2])
    r = anon.sys.rekey_multi(KEYS[:threshold], nonce=start["nonce"])
    eq("complete", r["complete"], True)
    eq("keys", [len(r["keys"]), len(r["keys_base64"])], [5, 5])
    root.sys.seal()
    eq("sealed", root.sys.is_sealed(), True)
    # The old shares (the new threshold of them) no longer open it.
    try:
        anon.sys.submit_unseal_keys(KEYS[:2])
    except exceptions.VaultError:
        pass
    eq("sealed after the old shares", anon.sys.is_sealed(), True)
    anon.sys.submit_unseal_key(reset=True)
    anon.sys.submit_unseal_keys(r["keys_base64"][3:])
    st = anon.sys.read_seal_status()
    eq("unsealed", [st["sealed"], st["t"], st["n"]], [False, 2, 5])
    eq("root token", root.auth.token.lookup_self()["data"]["id"], ROOT)


print(f"checks: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
