//! Embedding the distkv client library in an application.
//!
//! Start a server first (`distkv server --standalone -i Root one`), then:
//!
//! ```text
//! cargo run -p distkv-client --example embed_client -- [HOST [PORT]]
//! ```
//!
//! It writes a few entries, reads them back singly and as a tree, and shows
//! a watch picking up a change.

#![allow(clippy::print_stdout)] // an example program prints its results

use std::time::Duration;

use distkv_client::{Client, TreeOptions, WatchItem, WriteOptions};
use distkv_tree::{Path, Value};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port: u16 = match args.next() {
        Some(p) => p.parse()?,
        None => distkv_client::DEFAULT_PORT,
    };
    let client = Client::connect(&host, port).await?;
    println!("connected to server {}", client.greeting().node);

    let base = Path::from_strs(&["example", "sensors"]);
    for (name, temp) in [("kitchen", 21.5), ("cellar", 12.0)] {
        client
            .set(&base.child(name.into()), Value::Float(temp))
            .await?;
    }

    // Only create if missing: a second run reports the existing entry.
    let created = client
        .set_with(
            &base.child("attic".into()),
            Some(Value::Float(30.25)),
            &WriteOptions {
                chain: Some(None),
                ..WriteOptions::default()
            },
        )
        .await;
    match created {
        Ok(_) => println!("attic created"),
        Err(e) => println!("attic not created: {e}"),
    }

    let kitchen = client.get(&base.child("kitchen".into())).await?;
    println!("kitchen = {kitchen:?}");

    let mut tree = client.get_tree(&base, &TreeOptions::default()).await?;
    while let Some(item) = tree.next().await {
        let item = item?;
        println!("{} = {:?}", item.path, item.value);
    }

    let mut watch = client.watch(&base, false, &TreeOptions::default()).await?;
    client
        .set(&base.child("kitchen".into()), Value::Float(22.0))
        .await?;
    if let Ok(Some(Ok(WatchItem::Entry(e)))) =
        tokio::time::timeout(Duration::from_secs(5), watch.next()).await
    {
        println!("watch saw {} = {:?}", e.path, e.value);
    }
    Ok(())
}
