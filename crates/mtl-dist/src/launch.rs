//! Starting N ranks on this machine, as `torchrun --nproc-per-node N` would: one child
//! process per rank with `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and
//! `MASTER_PORT` set, a free loopback port for the rendezvous, and no orphan left
//! behind: when one rank fails the others are stopped and the failure is named.

use mtl_core::{Error, Result};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How one local rank ended.
#[derive(Debug)]
pub struct RankExit {
    /// The rank.
    pub rank: usize,
    /// Its exit status (`None` when the launcher stopped it after another rank failed).
    pub status: Option<ExitStatus>,
}

/// A free TCP port on the loopback interface for a rendezvous (asked of the OS; another
/// process could in principle take it before rank 0 binds it, which rank 0 then
/// reports as a port in use).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::Distributed {
        rank: 0,
        world_size: 0,
        message: format!("no free loopback port for the rendezvous: {e}"),
    })?;
    Ok(listener.local_addr().map(|a| a.port()).unwrap_or(0))
}

/// Starts `nproc` ranks of `command` (each a copy with the rank variables set, on
/// `127.0.0.1:port`) and waits for them. Returns every rank's exit when all succeed;
/// when one fails, stops the rest and returns an error naming the first rank that
/// failed and how.
pub fn run_local(
    nproc: usize,
    port: u16,
    command: impl Fn(usize) -> Command,
) -> Result<Vec<RankExit>> {
    if nproc == 0 {
        return Err(launch_error("--nproc 0: a run needs at least one rank"));
    }
    let mut children: Vec<Option<Child>> = Vec::with_capacity(nproc);
    for rank in 0..nproc {
        let mut cmd = command(rank);
        cmd.env("RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string());
        match cmd.spawn() {
            Ok(child) => children.push(Some(child)),
            Err(e) => {
                stop(&mut children);
                return Err(launch_error(format!("could not start rank {rank}: {e}")));
            }
        }
    }
    let mut exits: Vec<Option<ExitStatus>> = vec![None; nproc];
    loop {
        let mut running = 0;
        for rank in 0..nproc {
            let Some(child) = children[rank].as_mut() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    exits[rank] = Some(status);
                    children[rank] = None;
                    if !status.success() {
                        let grace = Instant::now();
                        // The others notice a dead peer through their collectives; give
                        // them a moment to say so themselves before stopping them.
                        while children.iter().any(Option::is_some)
                            && grace.elapsed() < Duration::from_secs(5)
                        {
                            for (r, c) in children.iter_mut().enumerate() {
                                if let Some(Ok(Some(s))) = c.as_mut().map(Child::try_wait) {
                                    exits[r] = Some(s);
                                    *c = None;
                                }
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        stop(&mut children);
                        return Err(launch_error(format!(
                            "rank {rank} of {nproc} failed ({status}); the other ranks were stopped"
                        )));
                    }
                }
                Ok(None) => running += 1,
                Err(e) => {
                    stop(&mut children);
                    return Err(launch_error(format!("lost track of rank {rank}: {e}")));
                }
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(exits
        .into_iter()
        .enumerate()
        .map(|(rank, status)| RankExit { rank, status })
        .collect())
}

fn stop(children: &mut [Option<Child>]) {
    for child in children.iter_mut().flatten() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn launch_error(message: impl Into<String>) -> Error {
    Error::Distributed {
        rank: 0,
        world_size: 0,
        message: message.into(),
    }
}

/// The variable set in the processes [`run_test_ranks`] starts.
pub const TEST_RANK_VAR: &str = "MTL_DIST_CHILD";

/// Whether this process is a rank started by [`run_test_ranks`].
pub fn is_test_rank() -> bool {
    std::env::var_os(TEST_RANK_VAR).is_some()
}

/// Runs test `name` of the running test binary as `nproc` ranks on loopback (each with
/// the rank variables, [`TEST_RANK_VAR`], `MTL_DIST_TIMEOUT_S=60` and `env` set) and
/// waits for them: the way a test checks data-parallel code, by branching on
/// [`is_test_rank`] between the ranks' part and the launcher's.
pub fn run_test_ranks(
    name: &str,
    nproc: usize,
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<Vec<RankExit>> {
    let exe = std::env::current_exe().map_err(|e| launch_error(format!("no test binary: {e}")))?;
    run_local(nproc, free_port()?, |_| {
        let mut cmd = Command::new(&exe);
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(TEST_RANK_VAR, "1")
            .env("MTL_DIST_TIMEOUT_S", "60");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    })
}
