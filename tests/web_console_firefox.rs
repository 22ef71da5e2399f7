//! The web console in Firefox: headless Firefox ESR (Debian's
//! `firefox-esr`) loads the console from a real server and is driven
//! through Marionette, Firefox's own remote protocol (length-prefixed
//! JSON over TCP: Debian packages no geckodriver). It checks that the
//! first level of the tree is rendered, that markup in a value stays
//! text, that a value changed by the command line appears in the live
//! page, and that an edit on the page is read back by the command line.
//!
//! Without the browser the test is skipped, saying why, except under CI
//! (`CI` set), where it fails. Waits poll; nothing is timed.
#![allow(clippy::print_stderr)] // a skipped test says why

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, ScratchDir, ServerProc};
use serde_json::{Value as Json, json};

const FIREFOX: &str = "/usr/bin/firefox-esr";

/// How long a wait for the page polls before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// A headless Firefox (killed by PID on drop) and a Marionette
/// connection to it.
struct Firefox {
    conn: BufReader<TcpStream>,
    next_id: u64,
    _process: KillOnDrop,
    _profile: ScratchDir,
}

impl Firefox {
    fn start() -> Firefox {
        let profile = ScratchDir::new("firefox-profile");
        let port = common::free_port();
        let prefs = format!(
            "user_pref(\"marionette.port\", {port});\n\
             user_pref(\"browser.shell.checkDefaultBrowser\", false);\n\
             user_pref(\"browser.startup.homepage_override.mstone\", \"ignore\");\n\
             user_pref(\"datareporting.policy.dataSubmissionEnabled\", false);\n\
             user_pref(\"toolkit.telemetry.reportingpolicy.firstRun\", false);\n\
             user_pref(\"app.update.disabledForTesting\", true);\n\
             user_pref(\"network.captive-portal-service.enabled\", false);\n\
             user_pref(\"browser.safebrowsing.malware.enabled\", false);\n\
             user_pref(\"browser.safebrowsing.phishing.enabled\", false);\n"
        );
        profile.file("user.js", &prefs);
        let child = Command::new(FIREFOX)
            .args(["--headless", "--marionette", "--no-remote", "--profile"])
            .arg(profile.path())
            .arg("about:blank")
            .env("MOZ_HEADLESS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start firefox");
        let process = KillOnDrop(child);
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if start.elapsed() > Duration::from_secs(60) => {
                    panic!("Firefox's Marionette port did not open: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut ff = Firefox {
            conn: BufReader::new(stream),
            next_id: 0,
            _process: process,
            _profile: profile,
        };
        let hello = ff.read_message();
        assert_eq!(hello["applicationType"], "gecko", "{hello}");
        ff.command("WebDriver:NewSession", json!({}));
        ff
    }

    /// One `length:json` message.
    fn read_message(&mut self) -> Json {
        let mut len = Vec::new();
        self.conn.read_until(b':', &mut len).expect("read");
        len.pop();
        let n: usize = String::from_utf8_lossy(&len)
            .trim()
            .parse()
            .expect("a length");
        let mut body = vec![0; n];
        self.conn.read_exact(&mut body).expect("read");
        serde_json::from_slice(&body).expect("json")
    }

    /// Sends a command and returns its result; a Marionette error fails
    /// the test.
    fn command(&mut self, name: &str, params: Json) -> Json {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!([0, id, name, params]).to_string();
        let framed = format!("{}:{msg}", msg.len());
        self.conn
            .get_mut()
            .write_all(framed.as_bytes())
            .expect("write");
        loop {
            let reply = self.read_message();
            if reply[0] == 1 && reply[1] == id {
                assert!(reply[2].is_null(), "{name} failed: {}", reply[2]);
                return reply[3].clone();
            }
        }
    }

    fn open(&mut self, url: &str) {
        self.command("WebDriver:Navigate", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    fn run(&mut self, script: &str, args: Json) -> Json {
        self.command(
            "WebDriver:ExecuteScript",
            json!({ "script": script, "args": args }),
        )["value"]
            .clone()
    }

    /// The text of the first node `xpath` finds, if any.
    fn text(&mut self, xpath: &str) -> Option<String> {
        let v = self.run(
            "const n = document.evaluate(arguments[0], document, null, \
             XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; \
             return n ? n.textContent : null;",
            json!([xpath]),
        );
        v.as_str().map(str::to_owned)
    }

    fn click(&mut self, xpath: &str) {
        let done = self.run(
            "const n = document.evaluate(arguments[0], document, null, \
             XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; \
             if (!n) return false; n.click(); return true;",
            json!([xpath]),
        );
        assert_eq!(done, json!(true), "nothing to click at {xpath}");
    }

    /// Waits until the node at `xpath` shows `want`.
    fn wait_text(&mut self, xpath: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.text(xpath);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "{xpath} shows {got:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_console_works_in_firefox() {
    if !common::programs_installed(&[(FIREFOX, "firefox-esr")]) {
        return;
    }
    let (s, port): (ServerProc, u16) = common::console_server();
    s.ok(&["data", "set", "-v", "one", "k"]);
    s.ok(&[
        "data",
        "set",
        "-v",
        "<img src=x onerror=alert(1)>",
        "markup",
    ]);
    let mut ff = Firefox::start();
    ff.open(&format!("http://127.0.0.1:{port}/"));

    // the first level is rendered; markup in a value is text
    ff.wait_text(&common::console_value_of("k"), "\"one\"");
    ff.wait_text(
        &common::console_value_of("markup"),
        "\"<img src=x onerror=alert(1)>\"",
    );
    assert_eq!(
        ff.run(
            "return document.querySelectorAll('main img').length;",
            json!([])
        ),
        json!(0),
        "markup in a value became an element"
    );

    // live: a change made by the command line appears
    ff.click("//input[@id='live']");
    ff.wait_text("//span[@id='status']", "live");
    s.ok(&["data", "set", "-v", "two", "k"]);
    ff.wait_text(&common::console_value_of("k"), "\"two\"");

    // an edit on the page is read back by the command line
    ff.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("k")
    ));
    let form = format!(
        "{}/form[contains(@class, 'editor')]",
        common::console_row("k")
    );
    let typed = ff.run(
        "const f = document.evaluate(arguments[0], document, null, \
         XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; \
         if (!f) return 'no editor'; \
         const type = f.querySelector('.type'); \
         if (type) { type.value = 'string'; \
           type.dispatchEvent(new Event('change', {bubbles: true})); } \
         const input = f.querySelector('.input'); \
         if (!input) return 'no input'; \
         input.value = 'from firefox'; \
         input.dispatchEvent(new Event('input', {bubbles: true})); \
         const save = f.querySelector('.save'); \
         if (!save) return 'no save button'; \
         save.click(); return 'saved';",
        json!([form]),
    );
    assert_eq!(typed, json!("saved"));
    let start = Instant::now();
    loop {
        let got = s.ok(&["data", "get", "k"]);
        if got.trim() == "\"from firefox\"" {
            break;
        }
        assert!(start.elapsed() < WAIT, "the command line reads {got}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
