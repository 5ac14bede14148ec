//! The `gilcheck` command line.

use clap::{Parser, Subcommand, ValueEnum};
use gilcheck::platform::Std;
use gilcheck::{Attached, ObjRef, RtError, Runtime};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "gilcheck",
    version,
    about = "A model-checked specification of CPython's GIL and reference counting"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario on real threads, with the runtime's GIL and refcount checks on.
    Run {
        scenario: Scenario,
        /// Number of threads.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        threads: u32,
        /// Loop iterations per thread.
        #[arg(long, default_value_t = 100_000)]
        iterations: u64,
        /// The GIL's switch interval in seconds, as `sys.setswitchinterval`.
        #[arg(long, default_value_t = 0.005, allow_negative_numbers = true)]
        switch_interval: f64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// The seed's claim 1: threads read `shared_data["revenue"]` and compute `value + 1`;
    /// every refcount change is a plain, non-atomic update made safe by the GIL.
    SeedRefcount,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario: Scenario::SeedRefcount,
            threads,
            iterations,
            switch_interval,
        } => seed_refcount(threads, iterations, switch_interval),
    };
    match result {
        Ok(code) => code,
        Err(Failure::BadInput(msg)) => {
            eprintln!("gilcheck: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Rule(e)) => {
            eprintln!("gilcheck: runtime rule violated: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    BadInput(String),
    Rule(RtError),
}

impl From<RtError> for Failure {
    fn from(e: RtError) -> Self {
        Failure::Rule(e)
    }
}

/// The seed's first program, thread for thread. Each loop iteration ends with a poll point, as
/// the backward jump of a `for` loop is one on every CPython version.
fn seed_refcount(threads: u32, iterations: u64, interval: f64) -> Result<ExitCode, Failure> {
    let rt = Runtime::<Std>::new();
    rt.gil()
        .set_switch_interval(interval)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut main = rt.thread_state();
    let (shared, revenue) = {
        let g = main.attach();
        let (py, heap) = (g.token(), g.heap());
        let d = heap.new_dict(py);
        for (k, v) in [("revenue", 142500.0), ("costs", 98000.0)] {
            let (k, v) = (heap.new_str(py, k), heap.new_float(py, v));
            heap.dict_set(py, d, k, v)?;
            heap.decref(py, k)?;
            heap.decref(py, v)?;
        }
        (d, heap.new_str(py, "revenue"))
    };
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let mut ts = rt.thread_state();
            std::thread::spawn(move || -> Result<(), RtError> {
                let g = ts.attach();
                read_data(&g, shared, revenue, iterations)
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker thread panicked")?;
    }
    let elapsed = start.elapsed();
    report(
        &main.attach(),
        &rt,
        shared,
        revenue,
        threads,
        iterations,
        elapsed.as_secs_f64(),
    )
}

/// `for _ in range(iterations): value = shared_data["revenue"]; _ = value + 1`
fn read_data(
    g: &Attached<'_, Std>,
    shared: ObjRef,
    key: ObjRef,
    iterations: u64,
) -> Result<(), RtError> {
    let (py, heap) = (g.token(), g.heap());
    for _ in 0..iterations {
        let value = heap.dict_get(py, shared, key)?;
        let sum = heap.new_float(py, heap.float_value(py, value)? + 1.0);
        heap.decref(py, sum)?;
        heap.decref(py, value)?;
        let _ = g.poll(); // JUMP_BACKWARD
    }
    Ok(())
}

fn report(
    g: &Attached<'_, Std>,
    rt: &Arc<Runtime<Std>>,
    shared: ObjRef,
    key: ObjRef,
    threads: u32,
    iterations: u64,
    seconds: f64,
) -> Result<ExitCode, Failure> {
    let (py, heap) = (g.token(), g.heap());
    let value = heap.dict_get(py, shared, key)?;
    let value_refs = heap.refcount(py, value)? - 1; // minus the reference we just took
    heap.decref(py, value)?;
    println!(
        "Reference count after threading: {}",
        heap.getrefcount(py, shared)?
    );
    println!("No corruption – GIL protected the reference count");
    println!();
    heap.decref(py, shared)?;
    heap.decref(py, key)?;
    let stats = heap.stats(py);
    println!(
        "threads: {threads} × {iterations} iterations in {seconds:.2} s (real threads, switch interval {:.0} µs)",
        rt.gil().switch_interval() * 1e6
    );
    println!("GIL switches: {}", rt.gil().switch_number());
    println!(
        "objects allocated: {}, freed: {}",
        stats.allocated, stats.freed
    );
    println!(
        "refcount of shared_data[\"revenue\"] after the threads: {value_refs} (held by the dict only)"
    );
    let leaks = heap.leak_report(py)?;
    println!("{leaks}");
    Ok(if leaks.is_clean() && value_refs == 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
