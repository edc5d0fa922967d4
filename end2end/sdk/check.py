"""Drives a running Chancery's gateway with the official `openai` and
`mistralai` Python SDKs, unmodified, as users' code does: models, chat,
streaming (with usage), embeddings, and the SDKs' error classes for 401, 403
and 429.

Also the `mistralai` SDK's `beta.users` (whoami, list_workspaces) and
`beta.service_accounts` (create, list, get, update, roles, delete), and a
service account's key calling models until the account is deleted.

Usage: check.py BASE_URL, with three workspace API keys and an Admin API key
in the environment:
  CHANCERY_KEY             any model
  CHANCERY_KEY_RESTRICTED  allowed mistral-small-latest only
  CHANCERY_KEY_LIMITED     one request per minute
  CHANCERY_ADMIN_KEY       an Admin API key of the same Organization
Prints one line per check; exits 1 at the first failure.
"""

import json
import os
import sys
import time
import urllib.request

import openai
from mistralai.client import Mistral
from mistralai.client.errors import MistralError

CHAT_MODEL = "mistral-small-latest"
OTHER_MODEL = "mistral-large-latest"
EMBED_MODEL = "mistral-embed"
MESSAGES = [{"role": "user", "content": "Say hello"}]
BAD_KEY = "chy_ws_AAAAAAAAAAAA_" + "0" * 43


def check(name, condition, detail=""):
    print(f"{'ok' if condition else 'FAILED':6} {name}{': ' + str(detail) if detail and not condition else ''}")
    if not condition:
        sys.exit(1)


def status_of(call):
    """The HTTP status an SDK call failed with (None if it succeeded), and the exception."""
    try:
        call()
    except openai.APIStatusError as err:
        return err.status_code, err
    except MistralError as err:
        return err.status_code, err
    return None, None


def with_openai(base, key, restricted, limited):
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    ids = [m.id for m in client.models.list()]
    check("openai: models.list", CHAT_MODEL in ids and EMBED_MODEL in ids, ids)
    answer = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=32)
    check("openai: chat", bool(answer.choices[0].message.content) and answer.usage.total_tokens > 0, answer)
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, max_tokens=32, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage]
    check("openai: chat streamed, with usage", bool(text) and usage and usage[-1].total_tokens > 0, chunks[-1])
    embedded = client.embeddings.create(model=EMBED_MODEL, input=["a", "b"])
    check("openai: embeddings", len(embedded.data) == 2 and len(embedded.data[0].embedding) > 0, embedded)

    status, err = status_of(lambda: openai.OpenAI(base_url=f"{base}/v1", api_key=BAD_KEY, max_retries=0).models.list())
    check("openai: unknown key is AuthenticationError", isinstance(err, openai.AuthenticationError), err)
    only_small = openai.OpenAI(base_url=f"{base}/v1", api_key=restricted, max_retries=0)
    status, err = status_of(lambda: only_small.chat.completions.create(model=OTHER_MODEL, messages=MESSAGES, max_tokens=8))
    check("openai: a model not allowed is PermissionDeniedError", isinstance(err, openai.PermissionDeniedError), err)
    one_a_minute = openai.OpenAI(base_url=f"{base}/v1", api_key=limited, max_retries=0)
    statuses = [status_of(lambda: one_a_minute.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=8)) for _ in range(2)]
    check("openai: over the rate limit is RateLimitError", isinstance(statuses[-1][1], openai.RateLimitError), statuses)


def with_mistralai(base, key, restricted, limited):
    client = Mistral(api_key=key, server_url=base)
    cards = client.models.list().data
    ids = [card.id for card in cards]
    check("mistralai: models.list", CHAT_MODEL in ids and EMBED_MODEL in ids, ids)
    chat_card = next(card for card in cards if card.id == CHAT_MODEL)
    check("mistralai: model cards say what a model does", chat_card.capabilities.completion_chat, chat_card)
    answer = client.chat.complete(model=CHAT_MODEL, messages=MESSAGES, max_tokens=32)
    check("mistralai: chat.complete", bool(answer.choices[0].message.content) and answer.usage.total_tokens > 0, answer)
    events = list(client.chat.stream(model=CHAT_MODEL, messages=MESSAGES, max_tokens=32))
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    check("mistralai: chat.stream", bool(text), events[-1] if events else None)
    embedded = client.embeddings.create(model=EMBED_MODEL, inputs=["a", "b"])
    check("mistralai: embeddings.create", len(embedded.data) == 2, embedded)

    status, err = status_of(lambda: Mistral(api_key=BAD_KEY, server_url=base).models.list())
    check("mistralai: unknown key is a 401", status == 401, err)
    status, err = status_of(lambda: Mistral(api_key=restricted, server_url=base).chat.complete(model=OTHER_MODEL, messages=MESSAGES, max_tokens=8))
    check("mistralai: a model not allowed is a 403", status == 403, err)
    status, err = status_of(lambda: Mistral(api_key=limited, server_url=base).chat.complete(model=CHAT_MODEL, messages=MESSAGES, max_tokens=8))
    check("mistralai: over the rate limit is a 429", status == 429, err)


def admin_api(base, admin_key, method, path, body):
    """The Admin API over plain HTTP: what the SDKs do not cover (a key for a service account)."""
    request = urllib.request.Request(
        f"{base}/api/admin{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"x-api-key": admin_key, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def with_service_accounts(base, key, admin_key):
    users = Mistral(api_key=key, server_url=base).beta.users
    me = users.whoami(security={"bearer_user_context_auth": key})
    check("mistralai: beta.users.whoami names the key's person", me.principal.principal_type == "user", me)
    workspace_id = me.workspace.id
    mine = users.list_workspaces(security={"bearer_user_context_auth": key}).result.workspaces
    check("mistralai: beta.users.list_workspaces", any(w.id == workspace_id for w in mine), mine)

    accounts = Mistral(api_key=admin_key, server_url=base).beta.service_accounts
    roles = accounts.list_assignable_roles(workspace_id=workspace_id).items
    admin_role = next((r for r in roles if r.name == "workspace_admin"), None)
    check("mistralai: service_accounts.list_assignable_roles", admin_role is not None, roles)
    name = f"sdk-{os.getpid()}"
    account = accounts.create(name=name, workspace_id=workspace_id, description="made by the SDK")
    check("mistralai: service_accounts.create", account.name == name and account.deleted_at is None, account)
    listed = accounts.list(offset=0, limit=10, workspace_id=workspace_id, q=name).result.items
    check("mistralai: service_accounts.list", [a.id for a in listed] == [account.id], listed)
    updated = accounts.update(service_account_id=account.id, description="changed by the SDK")
    check("mistralai: service_accounts.update", updated.description == "changed by the SDK", updated)
    held = accounts.set_roles(service_account_id=account.id, role_ids=[admin_role.uuid]).items
    read = accounts.list_roles(service_account_id=account.id).items
    check("mistralai: service_accounts.set_roles", [r.role_id for r in held] == [r.role_id for r in read] == [admin_role.uuid], read)

    made = admin_api(base, admin_key, "POST", "/api-keys",
                     {"workspace_uuid": workspace_id, "service_account_id": account.id, "name": "sdk"})
    bot = Mistral(api_key=made["key"], server_url=base)
    # The gateway learns of a new key within a second.
    for _ in range(30):
        status, err = status_of(lambda: bot.beta.users.whoami(security={"bearer_user_context_auth": made["key"]}))
        if status is None:
            break
        time.sleep(0.1)
    who = bot.beta.users.whoami(security={"bearer_user_context_auth": made["key"]})
    check("mistralai: whoami names the service account", getattr(who.principal, "service_account_id", None) == account.id, who)
    answer = bot.chat.complete(model=CHAT_MODEL, messages=MESSAGES, max_tokens=8)
    check("mistralai: a service account's key calls models", answer.usage.total_tokens > 0, answer)

    accounts.delete(service_account_id=account.id)
    gone = accounts.get(service_account_id=account.id)
    check("mistralai: service_accounts.delete", gone.deleted_at is not None, gone)
    # The gateway learns of the deletion within a second.
    for _ in range(30):
        status, err = status_of(lambda: bot.chat.complete(model=CHAT_MODEL, messages=MESSAGES, max_tokens=8))
        if status == 401:
            break
        time.sleep(0.1)
    check("mistralai: a deleted service account's key is refused", status == 401, err)


def main():
    base = sys.argv[1].rstrip("/")
    keys = [os.environ[name] for name in ("CHANCERY_KEY", "CHANCERY_KEY_RESTRICTED", "CHANCERY_KEY_LIMITED")]
    with_openai(base, *keys)
    # The limited key's one request of the minute is spent: the mistralai SDK meets the limit at once.
    with_mistralai(base, *keys)
    with_service_accounts(base, keys[0], os.environ["CHANCERY_ADMIN_KEY"])
    print(f"sdks: openai {openai.__version__}, mistralai: every check passed")


if __name__ == "__main__":
    main()
