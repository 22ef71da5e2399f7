//! `distkv client auth`: auth methods and users.

use distkv_auth::Registry;
use distkv_auth::params::parse_params;
use distkv_client::{Client, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;

use crate::app::Failure;
use crate::app::args::{AuthArgs, AuthCommand, UserCommand};
use crate::app::data::client_failure;
use crate::app::login::{Terminal, auth_failure, credentials};
use crate::app::output;

/// The method a command works on: `-m`, else the active one, else the
/// only one with users. `Ok(None)`: `-m -` (none).
fn method(args: &AuthArgs, client: &Client) -> Result<Option<String>, Failure> {
    if let Some(m) = &args.method {
        return Ok((m != "-").then(|| m.clone()));
    }
    let listed: Vec<Option<&str>> = client
        .greeting()
        .auth
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(Value::as_str)
        .collect();
    if let Some(Some(current)) = listed.first() {
        return Ok(Some((*current).to_owned()));
    }
    match listed.iter().flatten().collect::<Vec<_>>().as_slice() {
        [only] => Ok(Some((**only).to_owned())),
        _ => Err(Failure::usage("You need to set the auth method")),
    }
}

fn need(m: Option<String>) -> Result<String, Failure> {
    m.ok_or_else(|| Failure::usage("You need to set the auth method"))
}

/// `KEY=VALUE` aux entries; `codec=GROUP` (the original's tutorial's
/// spelling) is `conv=GROUP`.
fn aux(items: &[String]) -> Result<Value, Failure> {
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let mut m = MapBuilder::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("'{it}' is not KEY=VALUE")))?;
        m.push(if k == "codec" { "conv" } else { k }, v);
    }
    Ok(m.build())
}

/// Runs an auth command.
pub async fn run(opts: ConnectOptions, args: AuthArgs) -> Result<(), Failure> {
    let registry = Registry::builtin();
    // Parameters (and prompts) before connecting.
    let creds = match &args.cmd {
        AuthCommand::User {
            cmd: UserCommand::Add { params, .. },
        } => Some(params.clone()),
        AuthCommand::User {
            cmd: UserCommand::Mod { ident, params, .. },
        } => {
            // the tutorial names the user as `name=joe`
            let ident = ident.strip_prefix("name=").unwrap_or(ident);
            let mut p = vec![format!("name={ident}")];
            p.extend(params.iter().cloned());
            Some(p)
        }
        _ => None,
    };
    let adding = matches!(
        &args.cmd,
        AuthCommand::User {
            cmd: UserCommand::Add { .. }
        }
    );
    let creds_params = match &creds {
        Some(items) => {
            Some(parse_params(items.iter().map(String::as_str), &Terminal).map_err(auth_failure)?)
        }
        None => None,
    };
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e| client_failure(e, &opts);
    let chosen = method(&args, &client);
    match args.cmd {
        AuthCommand::List => {
            for m in client.greeting().auth.as_deref().unwrap_or(&[]) {
                if let Some(m) = m.as_str() {
                    output::print_line(m);
                }
            }
        }
        AuthCommand::Init { switch } => {
            let m = chosen?;
            let active = client
                .greeting()
                .auth
                .as_deref()
                .and_then(|a| a.first())
                .is_some_and(|m| !m.is_nil());
            if active && !switch {
                return Err(Failure::usage("Authentication is already set up"));
            }
            client.set_auth_method(m.as_deref()).await.map_err(fail)?;
            match m {
                Some(m) => output::print_line(&format!("Authorization switched to {m}")),
                None => output::print_line("Authorization turned off."),
            }
        }
        AuthCommand::User { cmd } => {
            let typ = need(chosen?)?;
            let m = registry.get(&typ).map_err(auth_failure)?;
            match cmd {
                UserCommand::List { yaml } => {
                    for ident in client.list_users(&typ).await.map_err(fail)? {
                        if yaml {
                            output::print_raw(&format!(
                                "ident: {ident}\nkind: user\ntyp: {typ}\n\n"
                            ));
                        } else {
                            output::print_line(&ident);
                        }
                    }
                }
                UserCommand::Add { aux: a, .. } | UserCommand::Mod { aux: a, .. } => {
                    let c = m
                        .credentials(&creds_params.unwrap_or_default())
                        .map_err(auth_failure)?;
                    client.set_user(&c, aux(&a)?, adding).await.map_err(fail)?;
                }
                UserCommand::Get { ident } => {
                    let reply = client.get_user(&typ, &ident).await.map_err(fail)?;
                    let mut shown = MapBuilder::new();
                    if let Value::Map(kv) = reply {
                        for (k, v) in kv {
                            match k.as_str() {
                                Some("typ" | "kind" | "ident" | "seq" | "tock") | None => {}
                                Some(k) => shown.push(k, v),
                            }
                        }
                    }
                    output::print_repr(&shown.build());
                }
                UserCommand::Auth { auth } => {
                    let spec = auth.unwrap_or_else(|| "root".into());
                    let c = match spec.strip_prefix('=') {
                        Some(_) => credentials(&spec, &registry)?,
                        None => {
                            let (method, params) =
                                distkv_auth::params::parse_auth_string(&spec, &Terminal)
                                    .map_err(auth_failure)?;
                            registry
                                .get(&method)
                                .and_then(|m| m.credentials(&params))
                                .map_err(auth_failure)?
                        }
                    };
                    client.login(&c).await.map_err(fail)?;
                    output::print_line("OK.");
                }
            }
        }
    }
    Ok(())
}
