//! The state-log reader: bytes read as a state file, record by record,
//! and loaded into a server's tree.
//!
//! Properties: no panic; the framed reader reports no more records and
//! dropped bytes than the input holds; the records it returns, written
//! again with `encode_record` behind a fresh header, read back identically
//! and with nothing dropped; `load_bytes` applies a file without
//! panicking and agrees with `read_records` on the record count.
#![no_main]

use std::sync::{Arc, LazyLock};

use distkv_proto::Limits;
use distkv_proto::record::{encode_record, header, read_records};
use distkv_server::ServerConfig;
use distkv_server::SyncPolicy;
use distkv_server::fuzzing::load_bytes;
use distkv_server::fuzzing::Shared;
use distkv_tree::Tree;
use libfuzzer_sys::fuzz_target;

static SHARED: LazyLock<Shared> = LazyLock::new(|| {
    let mut cfg = ServerConfig::new("fuzz");
    cfg.log_sync = SyncPolicy::Never;
    Shared::new(
        cfg,
        Arc::new(distkv_proto::transport::local::LocalGossip::default()),
        None,
    )
});

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let up_to_corruption = flags & 1 != 0;
    // A framed file is much easier to reach with the header given.
    let file: Vec<u8> = if flags & 2 != 0 {
        header().iter().chain(rest).copied().collect()
    } else {
        rest.to_vec()
    };
    let limits = Limits {
        max_frame: 64 << 20,
        ..Limits::default()
    };
    let read = read_records(&file, &limits, up_to_corruption);
    if let Ok(loaded) = &read {
        assert!(loaded.dropped <= file.len() as u64);
        assert!(loaded.dropped_at + loaded.dropped <= file.len() as u64);
        let mut again = header().to_vec();
        for r in &loaded.records {
            encode_record(r, &mut again);
        }
        let reread = read_records(&again, &limits, false).expect("a written file reads back");
        assert_eq!(
            reread.records, loaded.records,
            "records differ after rewriting"
        );
        assert_eq!(reread.dropped, 0);
        assert!(reread.framed);
    }

    // Building a server is costly (script engine); reuse one with a fresh
    // tree.
    let shared = &*SHARED;
    {
        let mut core = shared.lock();
        core.tree = Tree::new("fuzz", shared.config.chain_length);
        core.tree.mark_ready();
    }
    if let Ok(report) = load_bytes(shared, &file, "fuzz.state", up_to_corruption) {
        let loaded = read
            .as_ref()
            .expect("load_bytes succeeded where read_records failed");
        assert_eq!(report.records, loaded.records.len());
        assert_eq!(report.dropped, loaded.dropped);
    }
});
