//! The engine: compiling stored code and running it within limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use distkv_tree::Value;
use rhai::{AST, Dynamic, EvalAltResult, Position, Scope};

use crate::convert::{from_dynamic, to_dynamic};

thread_local! {
    /// When the run on this thread must stop.
    static DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// How much wall time the run on this thread has left (`None` outside a
/// run). Host functions that wait must not wait longer.
pub fn time_left() -> Option<Duration> {
    DEADLINE
        .with(std::cell::Cell::get)
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// How much one run may do. Every limit ends the run with an error when
/// it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Operations (Rhai's unit of work) per run.
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Elements in one array (and bytes in one blob).
    pub max_array_size: usize,
    /// Entries in one map.
    pub max_map_size: usize,
    /// Wall time per run.
    pub max_time: Duration,
    /// Bytes of source code.
    pub max_source: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 100_000,
            max_time: Duration::from_secs(1),
            max_source: 256 << 10,
        }
    }
}

/// Why code did not compile or run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code does not compile.
    #[error("{name}, line {line}: {message}")]
    Compile {
        /// The code's name (its path).
        name: String,
        /// The line in the stored code (1-based; 0: unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The code raised an error (`throw`) or failed while running.
    #[error("{0}")]
    Run(String),
    /// A limit was reached.
    #[error("limit reached: {0}")]
    Limit(String),
}

/// A compiled piece of stored code.
#[derive(Clone, Debug)]
pub struct Script {
    name: String,
    vars: Vec<String>,
    ast: Arc<AST>,
}

impl Script {
    /// The code's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its named variables, in order.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }
}

/// A sandboxed Rhai engine with limits. Hosts add their functions with
/// [`Engine::register`] before compiling.
pub struct Engine {
    rhai: rhai::Engine,
    limits: Limits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn line_of(p: Position) -> usize {
    p.line().unwrap_or(0)
}

impl Engine {
    /// An engine with these limits and no host functions.
    pub fn new(limits: Limits) -> Engine {
        let mut rhai = rhai::Engine::new();
        rhai.set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_expr_depths(64, 32);
        // `eval` would compile code at run time, past the compile checks.
        rhai.disable_symbol("eval");
        // Scripts never print to stdout: `print` goes to the run's
        // `Output`, if its host collects one (`run_printing`).
        rhai.on_print(crate::output::print);
        rhai.on_debug(|_, _, _| {});
        // Wall time: each run sets its deadline on the thread it runs on.
        rhai.on_progress(|_| {
            DEADLINE
                .with(|d| d.get())
                .is_some_and(|d| Instant::now() > d)
                .then(|| Dynamic::from("time"))
        });
        Engine { rhai, limits }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The Rhai engine, to register host functions
    /// (`engine.register().register_fn("get", …)`).
    pub fn register(&mut self) -> &mut rhai::Engine {
        &mut self.rhai
    }

    /// Compiles stored code `source` (a function body using `vars`).
    pub fn compile(&self, name: &str, source: &str, vars: &[&str]) -> Result<Script, CodeError> {
        if source.len() > self.limits.max_source {
            return Err(CodeError::Compile {
                name: name.to_owned(),
                line: 0,
                message: format!("the code is longer than {} bytes", self.limits.max_source),
            });
        }
        for v in vars {
            let ok = v
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(CodeError::Compile {
                    name: name.to_owned(),
                    line: 0,
                    message: format!("'{v}' is not a variable name"),
                });
            }
        }
        let ast = self.rhai.compile(source).map_err(|e| CodeError::Compile {
            name: name.to_owned(),
            line: line_of(e.1),
            message: e.0.to_string(),
        })?;
        Ok(Script {
            name: name.to_owned(),
            vars: vars.iter().map(|v| (*v).to_owned()).collect(),
            ast: Arc::new(ast),
        })
    }

    /// Runs `script` with `args` for its variables (missing ones are `()`),
    /// plus `extra` named variables. Blocking: call it off the async
    /// executor threads.
    pub fn run_with(
        &self,
        script: &Script,
        args: &[Value],
        extra: &[(&str, Value)],
    ) -> Result<Value, CodeError> {
        let mut scope = Scope::new();
        for (i, name) in script.vars.iter().enumerate() {
            scope.push_dynamic(name.clone(), args.get(i).map_or(Dynamic::UNIT, to_dynamic));
        }
        for (name, v) in extra {
            scope.push_dynamic((*name).to_owned(), to_dynamic(v));
        }
        let deadline = Instant::now() + self.limits.max_time;
        let previous = DEADLINE.with(|d| d.replace(Some(deadline)));
        let result = self
            .rhai
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast);
        DEADLINE.with(|d| d.set(previous));
        result.map(|d| from_dynamic(&d)).map_err(|e| run_error(&e))
    }

    /// Runs `script` as [`Engine::run_with`] does, collecting what it
    /// prints into `out` (bounded; see [`Output`](crate::Output)).
    /// Blocking: call it off the async executor threads.
    pub fn run_printing(
        &self,
        script: &Script,
        args: &[Value],
        extra: &[(&str, Value)],
        out: &mut crate::Output,
    ) -> Result<Value, CodeError> {
        crate::output::collect(out, || self.run_with(script, args, extra))
    }

    /// Runs `script` with `args` for its variables.
    pub fn run(&self, script: &Script, args: &[Value]) -> Result<Value, CodeError> {
        self.run_with(script, args, &[])
    }
}

fn run_error(e: &EvalAltResult) -> CodeError {
    use EvalAltResult as E;
    match e {
        E::ErrorTooManyOperations(_) => CodeError::Limit("too many operations".into()),
        E::ErrorStackOverflow(_) => CodeError::Limit("calls nested too deeply".into()),
        E::ErrorDataTooLarge(what, _) => CodeError::Limit(format!("{what} too large")),
        E::ErrorTerminated(_, _) => CodeError::Limit("out of time".into()),
        E::ErrorRuntime(v, _) => CodeError::Run(v.to_string()),
        E::ErrorInFunctionCall(_, _, inner, _) => run_error(inner),
        other => CodeError::Run(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::new(Limits {
            max_time: Duration::from_secs(10),
            ..Limits::default()
        })
    }

    #[test]
    fn arguments_results_and_errors() {
        let e = engine();
        let s = e.compile("add", "a + b", &["a", "b"]).expect("compile");
        assert_eq!(
            e.run(&s, &[Value::Int(2), Value::Int(3)]).expect("run"),
            Value::Int(5)
        );
        let s = e
            .compile("t", "throw \"not a percentage\"", &[])
            .expect("compile");
        assert_eq!(
            e.run(&s, &[]),
            Err(CodeError::Run("not a percentage".into()))
        );
        let s = e
            .compile("ret", "if x > 1 { return \"big\" } \"small\"", &["x"])
            .expect("compile");
        assert_eq!(
            e.run(&s, &[Value::Int(5)]).expect("run"),
            Value::from("big")
        );
    }

    #[test]
    fn compile_errors_name_the_line() {
        let e = engine();
        match e.compile("proc x", "let a = 1;\nlet b = ;\n", &[]) {
            Err(CodeError::Compile { name, line, .. }) => {
                assert_eq!(name, "proc x");
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.compile("v", "1", &["not a name"]).is_err());
        assert!(e.compile("big", &"1+".repeat(200_000), &[]).is_err());
    }

    #[test]
    fn hostile_scripts_are_stopped() {
        // Counted limits only: a wall-time limit would make the outcome
        // depend on how busy the machine is (the unoptimised engine fills
        // a map slowly).
        let e = Engine::new(Limits {
            max_operations: 200_000,
            max_time: Duration::from_secs(3600),
            ..Limits::default()
        });
        for (code, want) in [
            ("loop {}", "operations"),
            ("let s = \"x\"; loop { s += s; }", "too large"),
            ("let a = [1]; loop { a += a; }", "too large"),
            (
                "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
                "operations",
            ),
            ("fn f(x) { f(x + 1) } f(0)", "nested"),
        ] {
            let s = e.compile("h", code, &[]).expect("compile");
            match e.run(&s, &[]) {
                Err(CodeError::Limit(why)) => assert!(why.contains(want), "{code}: {why}"),
                other => panic!("{code}: {other:?}"),
            }
        }
        // no files, processes, modules or eval
        for code in [
            "import \"std\" as s;",
            "eval(\"1\")",
            "open(\"/etc/passwd\")",
            "system(\"ls\")",
        ] {
            let r = e.compile("h", code, &[]).and_then(|s| e.run(&s, &[]));
            assert!(r.is_err(), "{code}");
        }
    }

    #[test]
    fn wall_time_is_limited() {
        let e = Engine::new(Limits {
            max_operations: 0,
            max_time: Duration::from_millis(100),
            ..Limits::default()
        });
        let s = e.compile("slow", "loop {}", &[]).expect("compile");
        match e.run(&s, &[]) {
            Err(CodeError::Limit(why)) => assert!(why.contains("time"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
