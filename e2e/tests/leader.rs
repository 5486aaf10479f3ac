//! Leader election: of several operator processes only the Lease holder reconciles, and a new
//! one takes over within the lease duration when it dies, at once when it stops cleanly.

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use securityguard_e2e::checks::is_ready;
use securityguard_e2e::{
    JWT, Operator, OperatorOptions, TempNamespace, admin, eventually, kubectl_ok, repo_root, secret, volumes_for_guard,
    wait_for,
};
use securityguard_operator::crd::SecurityGuard;

const LEASE_SECONDS: u64 = 6;

async fn leader_of<'a>(operators: &'a [&'a Operator]) -> Option<&'a Operator> {
    let mut leaders = Vec::new();
    for op in operators {
        if op.is_leader().await {
            leaders.push(*op);
        }
    }
    assert!(leaders.len() <= 1, "two leaders at once: {:?}", leaders.iter().map(|o| &o.identity).collect::<Vec<_>>());
    leaders.pop()
}

fn options(ns: &str, identity: &str) -> OperatorOptions {
    OperatorOptions {
        lease_name: format!("e2e-leader-{ns}"),
        lease_seconds: LEASE_SECONDS,
        identity: identity.to_owned(),
        ..OperatorOptions::for_namespace(ns)
    }
}

#[tokio::test]
async fn only_the_leader_reconciles_and_leadership_moves_on() {
    let client = admin().await;
    let ns = TempNamespace::create(&client, "leader").await;
    let ns = ns.name.as_str();
    let mut a = Operator::start(&options(ns, "operator-a")).await;
    let mut b = Operator::start(&options(ns, "operator-b")).await;
    let first = eventually("a leader", Duration::from_secs(30), || async {
        leader_of(&[&a, &b]).await.map(|l| l.identity.clone())
    })
    .await;

    secret(ns, "securityguard-jwt", "secret", JWT);
    volumes_for_guard(ns, "minimal");
    kubectl_ok(&["-n", ns, "apply", "-f", repo_root().join("examples/minimal.yaml").to_str().expect("utf-8")], None);
    let guards: Api<SecurityGuard> = Api::namespaced(client.clone(), ns);
    wait_for(guards.clone(), "minimal", Duration::from_secs(90), is_ready).await;

    let (leader, follower) = if a.identity == first { (&mut a, &mut b) } else { (&mut b, &mut a) };
    assert!(leader.reconciles().await >= 1.0);
    assert_eq!(follower.reconciles().await, 0.0, "the follower reconciled");
    assert!(follower.writes().await.is_empty(), "the follower wrote");

    // The leader dies without releasing the Lease: the follower takes over once it expires.
    let died = Instant::now();
    leader.kill();
    eventually("the follower to lead", Duration::from_secs(LEASE_SECONDS + 10), || async {
        follower.is_leader().await.then_some(())
    })
    .await;
    let handover = died.elapsed();
    assert!(handover <= Duration::from_secs(LEASE_SECONDS + 3), "handover took {handover:?}");
    // ...and reconciles: an edit is carried out by the new leader.
    let edit = serde_json::json!({"spec": {"config": {"logLevel": "debug"}}});
    guards.patch("minimal", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("edit");
    wait_for(guards.clone(), "minimal", Duration::from_secs(90), is_ready).await;
    assert!(follower.reconciles().await >= 1.0, "the new leader reconciled");

    // A clean stop releases the Lease; a waiting process takes it at its next check, which comes
    // at the latest when the Lease would have expired.
    let mut c = Operator::start(&options(ns, "operator-c")).await;
    assert!(!c.is_leader().await);
    let stopped = Instant::now();
    let status = follower.stop();
    assert!(status.success(), "the operator exits cleanly on SIGTERM: {status}\n{}", follower.log());
    eventually("operator-c to lead", Duration::from_secs(LEASE_SECONDS + 10), || async {
        c.is_leader().await.then_some(())
    })
    .await;
    let handover = stopped.elapsed();
    assert!(handover <= Duration::from_secs(LEASE_SECONDS + 2), "released lease taken over in {handover:?}");
    assert!(c.stop().success());
}
