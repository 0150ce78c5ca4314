//! Two Gloo ranks on loopback, started as child processes of this test binary (each
//! runs one test function with the rank variables set).

use mtl_core::Collective;
use mtl_dist::{launch, DistConfig, ProcessGroup};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// The rank's group when this process is a launched child, `None` in the parent.
fn child_group() -> Option<ProcessGroup> {
    if !launch::is_test_rank() {
        return None;
    }
    let config = DistConfig::from_env()
        .unwrap()
        .expect("rank variables are set");
    Some(ProcessGroup::init(&config).unwrap())
}

#[test]
fn collectives_agree_across_two_ranks() {
    let Some(pg) = child_group() else {
        launch::run_test_ranks("collectives_agree_across_two_ranks", 2, &[]).unwrap();
        return;
    };
    let r = pg.rank() as f64;
    let t = Tensor::from_slice(&[1.0 + r, 10.0 * r]).to_kind(Kind::Double);
    pg.all_reduce_sum(&t).unwrap();
    assert_eq!(Vec::<f64>::try_from(&t).unwrap(), [3.0, 10.0]);
    // A non-contiguous tensor is reduced through a copy and written back.
    let m = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2]).tr();
    pg.all_reduce_sum(&m).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(m.contiguous().view([-1])).unwrap(),
        [2., 6., 4., 8.]
    );
    let all = pg.all_gather(&Tensor::from_slice(&[r as i64; 3])).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(Vec::<i64>::try_from(&all[1]).unwrap(), [1, 1, 1]);
    let b = Tensor::from_slice(&[r as f32 + 5.0]);
    pg.broadcast(&b, 1).unwrap();
    assert_eq!(f32::try_from(&b).unwrap(), 6.0);
    pg.barrier().unwrap();
    pg.agree("the test's configuration", 0xfeed_beef_0123_4567)
        .unwrap();
    let err = pg
        .agree("the method", 7 + pg.rank() as u64)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the ranks disagree on the method"), "{err}");
    assert!(err.contains("rank 1 has 0000000000000008"), "{err}");
}

#[test]
fn a_dead_rank_fails_the_others_within_the_timeout() {
    let Some(pg) = child_group() else {
        let start = Instant::now();
        let err = launch::run_test_ranks("a_dead_rank_fails_the_others_within_the_timeout", 2, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "took {:?}",
            start.elapsed()
        );
        return;
    };
    if pg.rank() == 1 {
        // Dies without a word, as a killed process would.
        std::process::exit(3);
    }
    let t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
    let start = Instant::now();
    let err = pg.all_reduce_sum(&t).unwrap_err().to_string();
    assert!(err.contains("all-reduce failed"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    // Rank 0 saw the failure itself: it exits with its own error.
    std::process::exit(4);
}

#[test]
fn a_port_in_use_is_named() {
    if launch::is_test_rank() {
        return;
    }
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = held.local_addr().unwrap().port();
    let config = DistConfig::new(0, 1, "127.0.0.1", port)
        .unwrap()
        .timeout(Duration::from_secs(5));
    let err = ProcessGroup::init(&config).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("rank 0 of 1"), "{err}");
}

#[test]
fn a_rank_that_never_arrives_times_out_the_rendezvous() {
    if launch::is_test_rank() {
        return;
    }
    let port = launch::free_port().unwrap();
    let config = DistConfig::new(0, 2, "127.0.0.1", port)
        .unwrap()
        .timeout(Duration::from_secs(2));
    let start = Instant::now();
    let err = ProcessGroup::init(&config).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}
