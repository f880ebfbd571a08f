//! One lock per container: the Create and Delete of a task, and the clean-up after its
//! dead shim, are serialised for that container only; other containers go on at the
//! same time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Key = (String, String);

/// Per-(namespace, container) async locks. An entry lives while someone holds or waits
/// for it; idle ones are dropped as others are taken, so the map stays as small as the
/// number of containers being changed.
#[derive(Default)]
pub struct ContainerLocks {
    map: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl ContainerLocks {
    /// Wait for the lock of one container.
    pub async fn lock(&self, ns: &str, id: &str) -> OwnedMutexGuard<()> {
        let m = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            // Only the map holds an idle lock: nobody holds or awaits it.
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry((ns.to_string(), id.to_string()))
                .or_default()
                .clone()
        };
        m.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_container_waits_other_containers_do_not() {
        let locks = Arc::new(ContainerLocks::default());
        let a = locks.lock("ns", "a").await;
        // Another container's lock is free at once.
        let b = tokio::time::timeout(Duration::from_secs(1), locks.lock("ns", "b"))
            .await
            .expect("b is not blocked by a");
        // The same ID in another namespace is another container.
        let a2 = tokio::time::timeout(Duration::from_secs(1), locks.lock("other", "a"))
            .await
            .expect("other/a is not blocked by ns/a");
        // The same container waits until the holder lets go.
        let l = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l.lock("ns", "a").await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a was taken twice");
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("a is free again")
            .unwrap();
        drop((b, a2));
        // Idle entries go away.
        let _c = locks.lock("ns", "c").await;
        assert_eq!(locks.len(), 1);
    }
}
