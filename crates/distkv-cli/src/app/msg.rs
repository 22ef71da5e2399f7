//! `distkv client msg`: messages through the servers' transport.

use distkv_client::msg::{MsgItem, check_topic};
use distkv_client::{Client, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;

use crate::app::Failure;
use crate::app::args::MsgCommand;
use crate::app::data::client_failure;
use crate::app::output;
use crate::literal;

/// Runs a `msg` command.
pub async fn run(opts: ConnectOptions, cmd: MsgCommand) -> Result<(), Failure> {
    let fail = |e| client_failure(e, &opts);
    match cmd {
        MsgCommand::Send { value, eval, topic } => {
            check_topic(&topic).map_err(|e| Failure::usage(e.to_string()))?;
            let data = match value {
                None if eval => {
                    return Err(Failure::usage("-e needs a value to evaluate (-v VALUE)"));
                }
                None => Value::Nil,
                Some(text) if eval => {
                    literal::parse(&text).map_err(|e| Failure::usage(format!("-v {text}: {e}")))?
                }
                Some(text) => Value::from(text.as_str()),
            };
            let client = Client::connect_with(&opts).await.map_err(fail)?;
            client.msg_send(&topic, data).await.map_err(fail)?;
        }
        MsgCommand::Monitor {
            count,
            verbose,
            yaml,
            topic,
        } => {
            check_topic(&topic).map_err(|e| Failure::usage(e.to_string()))?;
            if count == Some(0) {
                return Err(Failure::usage("-n needs a number of messages above 0"));
            }
            let client = Client::connect_with(&opts).await.map_err(fail)?;
            return monitor(&client, &topic, count, &opts, |item| {
                let m = match item {
                    MsgItem::Ready => {
                        if verbose {
                            output::info(&format!("monitoring {topic}"));
                        }
                        return false;
                    }
                    MsgItem::Message(m) => m,
                };
                let shown = match (&m.data, verbose) {
                    (Ok(d), false) => d.clone(),
                    (Ok(d), true) => MapBuilder::new()
                        .set("topic", m.topic.as_str())
                        .set("data", d.clone())
                        .build(),
                    (Err(u), _) => MapBuilder::new()
                        .set("topic", m.topic.as_str())
                        .set("raw", Value::Bytes(u.raw[..].into()))
                        .set("decode_error", u.reason.as_str())
                        .build(),
                };
                if yaml {
                    output::print_yaml(&shown);
                } else {
                    output::print_repr(&shown);
                }
                true
            })
            .await;
        }
    }
    Ok(())
}

/// Passes what arrives on `topic` to `show` until `show` has counted
/// `count` items (by returning true), or for ever without a count; the
/// server ending the monitor is an error.
pub async fn monitor(
    client: &Client,
    topic: &str,
    count: Option<u64>,
    opts: &ConnectOptions,
    mut show: impl FnMut(MsgItem) -> bool,
) -> Result<(), Failure> {
    let fail = |e| client_failure(e, opts);
    let mut s = client.messages(topic).await.map_err(fail)?;
    let mut seen = 0u64;
    while let Some(item) = s.next().await {
        if show(item.map_err(fail)?) {
            seen += 1;
            if count.is_some_and(|n| seen >= n) {
                return Ok(());
            }
        }
    }
    Err(Failure::with_code(
        "ConnectionClosed: the server ended the monitor",
        crate::app::EXIT_CONNECTION,
    ))
}
