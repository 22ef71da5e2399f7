//! The web console in a real browser driven through WebDriver: Debian's
//! `chromedriver` (package `chromium-driver`) on a free loopback port,
//! driving headless `/usr/bin/chromium`, against a real server. The
//! tests act as a user does (clicks, typing) and check what the page
//! shows and what the command line reads back:
//!
//! * a value changed by the command line appears in the live page;
//! * an edit made on the page is read back by the command line, and
//!   markup typed as a value stays text;
//! * an edit of a value the command line changed after the page loaded
//!   it is reported as a conflict, and does not overwrite;
//! * a subtree deleted from the page is gone for the command line;
//! * the errors page shows the error of a failing job and resolves it;
//!   the jobs page shows the jobs and their states.
//!
//! All waits poll (up to [`WAIT`]) instead of sleeping for a fixed time.
//! Without the browser or the driver the tests are skipped, saying why,
//! except under CI (`CI` set), where they fail. Browser sessions run one
//! at a time (the machine may be small); the driver is stopped by PID.
#![allow(clippy::print_stderr)] // a skipped test says why

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{KillOnDrop, ScratchDir, ServerProc};
use fantoccini::Locator;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The longest a polling wait lasts before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// One browser at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A console server, a chromedriver and a browser session on it.
struct Session {
    rt: tokio::runtime::Runtime,
    browser: Option<fantoccini::Client>,
    server: ServerProc,
    port: u16,
    _driver: KillOnDrop,
    profile: ScratchDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Session {
    fn start() -> Session {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (server, port) = common::console_server();
        let profile = ScratchDir::new("webdriver");
        let driver_port = common::free_port();
        let log = format!("{}/chromedriver.log", profile.path());
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .arg(format!("--log-path={log}"))
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = KillOnDrop(driver);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
            assert!(
                start.elapsed() < WAIT,
                "chromedriver did not open port {driver_port}; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}/profile", profile.path()),
                    "--window-size=1200,900",
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let browser = rt
            .block_on(async {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                tokio::time::timeout(
                    Duration::from_secs(60),
                    fantoccini::ClientBuilder::new(connector)
                        .capabilities(caps)
                        .connect(&format!("http://127.0.0.1:{driver_port}")),
                )
                .await
            })
            .expect("the browser starts within 60 s")
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start a browser session: {e}; chromedriver's log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Session {
            rt,
            browser: Some(browser),
            server,
            port,
            _driver: driver,
            profile,
            _turn: turn,
        }
    }

    fn browser(&self) -> &fantoccini::Client {
        self.browser.as_ref().expect("a browser session")
    }

    /// Opens the console's page `fragment` (`""`, `"#errors"`, …).
    fn open(&self, fragment: &str) {
        let url = format!("http://127.0.0.1:{}/{fragment}", self.port);
        self.rt
            .block_on(self.browser().goto(&url))
            .expect("open the console");
    }

    /// The text of the first element at `xpath`, if there is one.
    fn text(&self, xpath: &str) -> Option<String> {
        self.rt.block_on(async {
            let e = self.browser().find(Locator::XPath(xpath)).await.ok()?;
            e.text().await.ok()
        })
    }

    /// Whether an element is at `xpath`.
    fn exists(&self, xpath: &str) -> bool {
        self.rt.block_on(async {
            !self
                .browser()
                .find_all(Locator::XPath(xpath))
                .await
                .unwrap_or_default()
                .is_empty()
        })
    }

    /// Whether the element at `xpath` is there and shown.
    fn displayed(&self, xpath: &str) -> bool {
        self.rt.block_on(async {
            match self.browser().find(Locator::XPath(xpath)).await {
                Ok(e) => e.is_displayed().await.unwrap_or(false),
                Err(_) => false,
            }
        })
    }

    /// Polls `check` every 100 ms until it answers, for at most [`WAIT`].
    fn wait<T>(&self, what: &str, mut check: impl FnMut(&Session) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if start.elapsed() > WAIT {
                let page = self
                    .rt
                    .block_on(self.browser().source())
                    .unwrap_or_default();
                panic!("timed out after {WAIT:?}: {what}; the page:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the element at `xpath` shows `want`.
    fn wait_text(&self, xpath: &str, want: &str) {
        self.wait(&format!("{xpath} shows {want:?}"), |s| {
            (s.text(xpath).as_deref() == Some(want)).then_some(())
        });
    }

    /// Clicks the element at `xpath` (waiting for it to be there).
    fn click(&self, xpath: &str) {
        self.wait(&format!("{xpath} clicked"), |s| {
            s.rt.block_on(async {
                let e = s.browser().find(Locator::XPath(xpath)).await.ok()?;
                e.click().await.ok()
            })
        });
    }

    /// Types `text` into the (emptied) field at `xpath`.
    fn type_into(&self, xpath: &str, text: &str) {
        self.rt
            .block_on(async {
                let e = self.browser().find(Locator::XPath(xpath)).await?;
                e.clear().await?;
                e.send_keys(text).await
            })
            .expect("type into the field");
    }

    /// Chooses `value` in the select at `xpath`.
    fn select(&self, xpath: &str, value: &str) {
        self.rt
            .block_on(async {
                let e = self.browser().find(Locator::XPath(xpath)).await?;
                e.select_by_value(value).await
            })
            .expect("choose an option");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // closing the session makes chromedriver end the browser; the
        // driver itself is then killed by PID
        if let Some(b) = self.browser.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), b.close()).await });
        }
        let _ = &self.profile;
    }
}

/// Something in the editor of the row of `name`.
fn editor_of(name: &str, what: &str) -> String {
    format!(
        "{}/form[contains(@class, 'editor')]//*[contains(@class, '{what}')]",
        common::console_row(name)
    )
}

#[test]
fn a_value_changed_by_the_command_line_appears_in_the_live_page() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    s.server.ok(&["data", "set", "-v", "one", "k"]);
    s.open("");
    s.wait_text(&common::console_value_of("k"), "\"one\"");
    s.click("//input[@id='live']");
    s.wait_text("//span[@id='status']", "live");

    s.server.ok(&["data", "set", "-v", "two", "k"]);
    s.wait_text(&common::console_value_of("k"), "\"two\"");
    // a new entry below an open level appears as well
    s.server.ok(&["data", "set", "-v", "<b>new</b>", "fresh"]);
    s.wait_text(&common::console_value_of("fresh"), "\"<b>new</b>\"");
    assert!(
        !s.exists("//main//b"),
        "markup in a value became an element"
    );
    // a deleted value shows as such
    s.server.ok(&["data", "delete", "k"]);
    s.wait_text(&common::console_value_of("k"), "no value");
}

#[test]
fn an_edit_on_the_page_is_read_back_by_the_command_line() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    s.server.ok(&["data", "set", "-v", "one", "k"]);
    s.open("");
    s.wait_text(&common::console_value_of("k"), "\"one\"");

    // the editor shows only once asked for
    assert!(
        !s.displayed(&editor_of("k", "input")),
        "editor shown unasked"
    );
    // a number
    s.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("k")
    ));
    assert!(s.displayed(&editor_of("k", "input")), "no editor");
    s.select(&editor_of("k", "type"), "number");
    s.type_into(&editor_of("k", "input"), "42");
    s.click(&editor_of("k", "save"));
    s.wait_text(&common::console_value_of("k"), "42");
    assert_eq!(s.server.ok(&["data", "get", "k"]), "42\n");

    // a string holding markup: stored as typed, shown as text
    s.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("k")
    ));
    s.select(&editor_of("k", "type"), "string");
    s.type_into(&editor_of("k", "input"), "<i>x</i>");
    s.click(&editor_of("k", "save"));
    s.wait_text(&common::console_value_of("k"), "\"<i>x</i>\"");
    assert_eq!(s.server.ok(&["data", "get", "k"]), "\"<i>x</i>\"\n");
    assert!(
        !s.exists("//main//i"),
        "markup in a value became an element"
    );
}

#[test]
fn an_edit_of_a_value_changed_meanwhile_is_a_conflict() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    s.server.ok(&["data", "set", "-v", "one", "k"]);
    s.open("");
    s.wait_text(&common::console_value_of("k"), "\"one\"");
    // the page is not live: it still shows what it loaded
    s.server.ok(&["data", "set", "-v", "cli", "k"]);

    s.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("k")
    ));
    s.type_into(&editor_of("k", "input"), "page");
    s.click(&editor_of("k", "save"));
    let msg = s.wait("a conflict reported", |s| {
        s.text(&editor_of("k", "message"))
            .filter(|m| m.starts_with("conflict:"))
    });
    assert!(msg.contains("changed since you saw it"), "{msg}");
    assert_eq!(s.server.ok(&["data", "get", "k"]), "\"cli\"\n");
}

#[test]
fn a_subtree_deleted_on_the_page_is_gone() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    s.server.ok(&["data", "set", "-v", "top", "sub"]);
    s.server.ok(&["data", "set", "-v", "1", "sub", "a"]);
    s.server.ok(&["data", "set", "-v", "2", "sub", "b", "c"]);
    s.server.ok(&["data", "set", "-v", "stays", "other"]);
    s.open("");
    s.wait_text(&common::console_value_of("sub"), "\"top\"");

    s.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("sub")
    ));
    // the first click asks again, the second deletes
    s.click(&editor_of("sub", "delete-tree"));
    s.wait_text(
        &editor_of("sub", "delete-tree"),
        "really delete everything below?",
    );
    s.click(&editor_of("sub", "delete-tree"));
    s.wait("the deletion reported", |s| {
        s.text("//span[@id='status']")
            .filter(|t| t.starts_with("deleted 3 value(s)"))
    });
    for path in [&["sub"][..], &["sub", "a"], &["sub", "b", "c"]] {
        let mut args = vec!["data", "get"];
        args.extend_from_slice(path);
        let out = s.server.client(&args);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No data at"),
            "{path:?}: {out:?}"
        );
    }
    assert_eq!(s.server.ok(&["data", "get", "other"]), "\"stays\"\n");
    s.wait_text(&common::console_value_of("sub"), "no value");
}

#[test]
fn the_error_and_job_pages_show_what_the_command_line_made() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    // a runner ran the jobs; one failed, which the command line lists
    common::console_jobs(&s.server);

    s.open("#errors");
    let first = "//tbody[@id='errors-list']/tr[1]";
    let text = s.wait("the open error listed", |s| {
        s.text(first).filter(|t| t.contains("broken <b>here</b>"))
    });
    assert!(text.starts_with("open"), "{text}");
    assert!(text.contains("run"), "{text}");
    assert!(
        !s.exists("//main//b"),
        "markup in a message became an element"
    );
    // resolved from the page: gone from the open ones, for the command
    // line too
    s.click(&format!("{first}//button[@class='resolve']"));
    s.wait_text("//p[@id='errors-none']", "No open errors.");
    assert_eq!(s.server.ok(&["error", "list"]), "");
    s.click("//input[@id='errors-all']");
    let text = s.wait("the resolved error listed", |s| {
        s.text(first).filter(|t| t.starts_with("resolved"))
    });
    assert!(text.contains("broken <b>here</b>"), "{text}");

    s.open("#jobs");
    let job =
        |name: &str| format!("//tbody[@id='jobs-list']/tr[td[@class='mono' and text()='{name}']]");
    let good = s.wait("the job good", |s| s.text(&job("good")));
    assert!(good.starts_with("any"), "{good}");
    assert!(good.contains("done ") && good.contains(": 42"), "{good}");
    let bad = s.text(&job("bad")).expect("the job bad");
    assert!(
        bad.contains("failed ") && bad.contains("broken <b>here</b>"),
        "{bad}"
    );
    let later = s.text(&job("later")).expect("the job later");
    assert!(later.starts_with("at one"), "{later}");
    assert!(
        later.contains("not scheduled") && later.contains("never ran"),
        "{later}"
    );
}

#[test]
fn a_login_is_asked_for_when_the_server_requires_one() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    s.server.ok(&["data", "set", "-v", "one", "k"]);
    s.server
        .ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    s.server.ok(&["auth", "-m", "_test", "init"]);
    s.open("");
    s.wait("the login form", |s| {
        s.displayed("//input[@id='login-name']").then_some(())
    });
    assert!(
        !s.displayed("//ul[@id='tree']"),
        "the tree shown without a login"
    );
    assert_eq!(
        s.text("//span[@id='login-method']").as_deref(),
        Some("_test")
    );
    // a wrong name is refused on the page
    s.type_into("//input[@id='login-name']", "nobody");
    s.click("//button[@id='login-submit']");
    s.wait("the refusal", |s| {
        s.text("//span[@id='login-message']")
            .filter(|t| t.starts_with("login failed"))
    });
    s.type_into("//input[@id='login-name']", "joe");
    s.click("//button[@id='login-submit']");
    s.wait_text(&common::console_value_of("k"), "\"one\"");
    s.wait_text("//span[@id='user-name']", "joe");
    // the session is a cookie the page's script cannot read
    let cookies =
        s.rt.block_on(s.browser().execute("return document.cookie;", vec![]))
            .expect("run a script");
    assert_eq!(cookies, json!(""));
    // logging out asks again
    s.click("//button[@id='logout']");
    s.wait("the login form again", |s| {
        s.displayed("//input[@id='login-name']").then_some(())
    });
}

/// Writes `docs/console.png`, the README's picture of the console: a
/// small tree, two levels open, an editor open, live on. Run it with
/// `cargo test --test web_console_webdriver -- --ignored screenshot`.
#[test]
#[ignore = "writes docs/console.png"]
fn screenshot() {
    if !common::programs_installed(&[(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]) {
        return;
    }
    let s = Session::start();
    for (value, path) in [
        ("'My house'", &["home", "name"][..]),
        ("True", &["home", "living", "light"]),
        ("21.5", &["home", "living", "temperature"]),
        ("[18, 21.5, 'auto']", &["home", "living", "heating"]),
        ("False", &["home", "kitchen", "light"]),
        ("8.25", &["sensors", "outdoor", "temperature"]),
        ("71", &["sensors", "outdoor", "humidity"]),
        ("{'on': '06:30', 'off': '23:00'}", &["schedules", "porch"]),
    ] {
        let mut args = vec!["data", "set", "-e", "-v", value];
        args.extend_from_slice(path);
        s.server.ok(&args);
    }
    s.rt.block_on(s.browser().set_window_size(1000, 620))
        .expect("window size");
    s.open("");
    s.wait_text(&common::console_value_of("schedules"), "no value");
    let toggle = |name: &str| {
        format!(
            "{}/div[@class='line']/button[@class='toggle']",
            common::console_row(name)
        )
    };
    s.click(&toggle("home"));
    s.wait_text(&common::console_value_of("name"), "\"My house\"");
    s.click(&toggle("living"));
    s.wait_text(&common::console_value_of("temperature"), "21.5");
    s.click(&toggle("sensors"));
    s.wait_text(&common::console_value_of("outdoor"), "no value");
    s.click("//input[@id='live']");
    s.wait_text("//span[@id='status']", "live");
    s.click(&format!(
        "{}/div[@class='line']/button[@class='edit']",
        common::console_row("temperature")
    ));
    s.wait("the editor open", |s| {
        s.displayed(&editor_of("temperature", "input"))
            .then_some(())
    });
    let png =
        s.rt.block_on(s.browser().screenshot())
            .expect("a screenshot");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
    std::fs::create_dir_all(out.parent().expect("docs")).expect("docs directory");
    std::fs::write(&out, png).expect("write the screenshot");
}
