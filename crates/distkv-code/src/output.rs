//! What a script prints: Rhai's `print` collected per run into a bounded
//! buffer, optionally passed on line by line as it happens.

use std::cell::RefCell;

/// How many bytes of printed text one run keeps by default.
pub const MAX_OUTPUT: usize = 16 << 10;

/// Receives each printed line (without its newline) while a script runs.
pub type LiveOutput = Box<dyn FnMut(&str) + Send>;

/// The text a script printed during one run, at most `max` bytes of it:
/// each `print` adds a line; what does not fit is dropped and the output
/// is marked truncated.
///
/// ```
/// use distkv_code::{Engine, Limits, Output};
/// use distkv_tree::Value;
///
/// let engine = Engine::new(Limits::default());
/// let script = engine.compile("answer", "print(\"Forty-Two!\"); 42", &[])?;
/// let mut out = Output::new(1024);
/// assert_eq!(engine.run_printing(&script, &[], &[], &mut out)?, Value::Int(42));
/// assert_eq!(out.text(), "Forty-Two!\n");
/// # Ok::<(), distkv_code::CodeError>(())
/// ```
pub struct Output {
    text: String,
    max: usize,
    truncated: bool,
    live: Option<LiveOutput>,
}

impl Default for Output {
    fn default() -> Output {
        Output::new(MAX_OUTPUT)
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("text", &self.text)
            .field("max", &self.max)
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// An empty output that keeps at most `max` bytes.
    pub fn new(max: usize) -> Output {
        Output {
            text: String::new(),
            max,
            truncated: false,
            live: None,
        }
    }

    /// Also hands every line that is kept to `live` as it is printed.
    pub fn with_live(mut self, live: LiveOutput) -> Output {
        self.live = Some(live);
        self
    }

    /// The text kept so far: one line per `print`, each ending in a
    /// newline (the last one cut short when the bound was reached).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether printed text was dropped because of the bound.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Adds one printed line.
    fn push(&mut self, line: &str) {
        if self.truncated {
            return;
        }
        let room = self.max.saturating_sub(self.text.len());
        if line.len() < room {
            self.text.push_str(line);
            self.text.push('\n');
            if let Some(live) = &mut self.live {
                live(line);
            }
            return;
        }
        self.truncated = true;
        let mut end = room;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let kept = &line[..end];
        self.text.push_str(kept);
        if let (false, Some(live)) = (kept.is_empty(), &mut self.live) {
            live(kept);
        }
    }
}

thread_local! {
    /// The output of the run on this thread, if it collects one.
    static CURRENT: RefCell<Option<Output>> = const { RefCell::new(None) };
}

/// Collects what is printed on this thread into `out` while `f` runs.
pub(crate) fn collect<T>(out: &mut Output, f: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| c.replace(Some(std::mem::take(out))));
    let r = f();
    if let Some(done) = CURRENT.with(|c| c.replace(previous)) {
        *out = done;
    }
    r
}

/// Handles one `print` of a script on this thread.
pub(crate) fn print(text: &str) {
    CURRENT.with(|c| {
        if let Ok(mut current) = c.try_borrow_mut() {
            if let Some(out) = current.as_mut() {
                for line in text.split('\n') {
                    out.push(line);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn lines_are_kept_up_to_the_bound() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut out = Output::new(10).with_live(Box::new(move |l| {
            s2.lock().expect("lock").push(l.to_owned());
        }));
        collect(&mut out, || {
            print("abc");
            print("défghij");
            print("more");
        });
        assert!(out.truncated());
        assert!(out.text().len() <= 10, "{:?}", out.text());
        assert!(out.text().starts_with("abc\nd"), "{:?}", out.text());
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen[0], "abc");
        assert_eq!(seen.len(), 2);
        // nothing collected outside a run
        print("lost");
    }
}
