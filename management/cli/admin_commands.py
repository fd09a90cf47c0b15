"""``moma account`` and ``moma token``: administration through the API (admin token)."""

from __future__ import annotations

import click

from .context import CliContext, output_option, pass_context, print_table, save_defaults

ACCOUNT_COLUMNS = (("SUBSCRIPTION", "subscriptionId"), ("RESOURCE GROUP", "resourceGroupName"),
                   ("ACCOUNT", "accountName"), ("CREATED", "createdAt"))
TOKEN_COLUMNS = (("ID", "id"), ("NAME", "name"), ("ACCOUNT", "accountId"), ("ADMIN", "admin"),
                 ("CREATED", "createdAt"), ("REVOKED", "revokedAt"))


@click.group()
def account() -> None:
    """Accounts: every model, manifest, image and service lives in one.

    \b
    Example:
      moma account create -n team-a && moma account set -n team-a
    """


@account.command("create")
@click.option("-n", "--name", required=True, help="Account name: lower-case letters, digits, hyphens.")
@click.option("--subscription", default="default", show_default=True)
@click.option("--resource-group", default="default", show_default=True)
@output_option
@pass_context
def account_create(ctx: CliContext, name: str, subscription: str, resource_group: str) -> None:
    """Create an account.

    \b
    Example:
      moma account create -n team-a --subscription 0000 --resource-group ml
    """
    created = ctx.client.call("POST", "/api/admin/accounts", account=False, json={
        "subscriptionId": subscription, "resourceGroupName": resource_group, "accountName": name}).json()
    ctx.emit(created, lambda value: click.echo(f"created account {value['path']}"))


@account.command("list")
@output_option
@pass_context
def account_list(ctx: CliContext) -> None:
    """List accounts.

    \b
    Example:
      moma account list -o json
    """
    accounts = ctx.client.call("GET", "/api/admin/accounts", account=False).json()["value"]
    ctx.emit(accounts, lambda rows: print_table(rows, ACCOUNT_COLUMNS))


@account.command("show")
@output_option
@pass_context
def account_show(ctx: CliContext) -> None:
    """Show the account commands use (from flags, MOMA_ACCOUNT or `moma account set`).

    \b
    Example:
      moma --account team-a account show
    """
    scope = ctx.scope
    ctx.emit({"subscriptionId": scope.subscription_id, "resourceGroupName": scope.resource_group,
              "accountName": scope.account, "path": scope.path},
             lambda value: click.echo(value["path"]))


@account.command("set")
@click.option("-n", "--name", required=True)
@click.option("--subscription", default="default", show_default=True)
@click.option("--resource-group", default="default", show_default=True)
def account_set(name: str, subscription: str, resource_group: str) -> None:
    """Save the account later commands use by default.

    \b
    Example:
      moma account set -n team-a
    """
    path = save_defaults({"account": {"subscriptionId": subscription, "resourceGroupName": resource_group,
                                      "accountName": name}})
    click.echo(f"default account {subscription}/{resource_group}/{name} saved in {path}")


@click.group()
def token() -> None:
    """API tokens: admin tokens reach every account, account tokens their own.

    \b
    Example:
      moma --account team-a token create -n ci
    """


@token.command("create")
@click.option("-n", "--name", required=True, help="A name to recognise the token by.")
@click.option("--admin", is_flag=True, help="An admin token instead of one for the current account.")
@output_option
@pass_context
def token_create(ctx: CliContext, name: str, admin: bool) -> None:
    """Create a token; it is shown once. It belongs to the current account unless --admin.

    \b
    Examples:
      moma --account team-a token create -n ci
      moma token create -n ops --admin
    """
    body: dict[str, str | bool] = {"name": name}
    if admin:
        body["admin"] = True
    else:
        body |= {"subscriptionId": ctx.scope.subscription_id, "resourceGroupName": ctx.scope.resource_group,
                 "accountName": ctx.scope.account}
    created = ctx.client.call("POST", "/api/admin/tokens", account=False, json=body).json()
    ctx.emit(created, lambda value: click.echo(f"token {value['id']} ({value['name']}): {value['token']}\n"
                                               "store it now; it cannot be shown again"))


@token.command("list")
@output_option
@pass_context
def token_list(ctx: CliContext) -> None:
    """List tokens (never their secrets).

    \b
    Example:
      moma token list -o json
    """
    tokens = ctx.client.call("GET", "/api/admin/tokens", account=False).json()["value"]
    ctx.emit(tokens, lambda rows: print_table(rows, TOKEN_COLUMNS))


@token.command("revoke")
@click.argument("token_id")
@output_option
@pass_context
def token_revoke(ctx: CliContext, token_id: str) -> None:
    """Revoke a token by id; requests with it fail from now on.

    \b
    Example:
      moma token revoke 5d41402abc4b2a76b9719d911017c592
    """
    ctx.client.call("DELETE", f"/api/admin/tokens/{token_id}", account=False)
    ctx.emit({"id": token_id, "revoked": True}, lambda value: click.echo(f"revoked {token_id}"))
