"""Drives a Cofre server with hvac, the Python Vault client, and checks every answer is what hvac expects of Vault.

Prints one line per check, "ok   <what>" or "FAIL <what>: <why>", then "checks: N passed, M failed", and exits 1
when a check failed. Reads VAULT_ADDR and VAULT_TOKEN (a root token); COFRE_AUDIT_FILE names the file the audit
checks enable a file device on; COFRE_PG_HOST, COFRE_PG_PORT, COFRE_PG_USER and COFRE_PG_PASSWORD, when set, name a
PostgreSQL superuser for the database lease checks.
"""

import json
import os
import sys
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


print(f"checks: {results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
