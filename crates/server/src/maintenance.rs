//! Operator holds on a cell: refresh paused while a backup runs (with a deadline, so a backup
//! that crashed never pauses refresh forever), and a restore swapping the database. Read on
//! every refresh request and readiness probe, so the checks are single atomic loads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct Maintenance {
    /// Unix seconds until which refresh is paused (0: not paused).
    paused_until: AtomicU64,
    /// The backup holding the pause; only touched by operator requests.
    paused_by: Mutex<Option<String>>,
    restoring: AtomicBool,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance")
            .field("paused_until", &self.paused_until.load(Ordering::Relaxed))
            .field("restoring", &self.restoring.load(Ordering::Relaxed))
            .finish()
    }
}

impl Maintenance {
    /// Pause refresh for `backup_id` until `until` (unix seconds). Another backup's live pause
    /// is refused (`Err` names it) so two backups never interleave; the same id extends it.
    pub fn pause(&self, backup_id: &str, now: u64, until: u64) -> Result<(), String> {
        let mut holder = self.paused_by.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = holder.as_deref()
            && other != backup_id
            && self.paused_until.load(Ordering::Acquire) > now
        {
            return Err(other.to_string());
        }
        *holder = Some(backup_id.to_string());
        self.paused_until.store(until, Ordering::Release);
        Ok(())
    }

    /// Lift the pause if `backup_id` holds it (or nobody does); whether it is lifted now.
    pub fn resume(&self, backup_id: &str, now: u64) -> bool {
        let mut holder = self.paused_by.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.paused_until.load(Ordering::Acquire) > now;
        match holder.as_deref() {
            Some(other) if other != backup_id && live => false,
            _ => {
                *holder = None;
                self.paused_until.store(0, Ordering::Release);
                true
            }
        }
    }

    /// Whether `backup_id` holds a live pause.
    pub fn paused_by(&self, backup_id: &str, now: u64) -> bool {
        let holder = self.paused_by.lock().unwrap_or_else(|e| e.into_inner());
        holder.as_deref() == Some(backup_id) && self.refresh_paused(now)
    }

    pub fn refresh_paused(&self, now: u64) -> bool {
        self.paused_until.load(Ordering::Acquire) > now
    }

    /// Mark a restore in progress; false if one already is.
    pub fn begin_restore(&self) -> bool {
        !self.restoring.swap(true, Ordering::AcqRel)
    }

    pub fn end_restore(&self) {
        self.restoring.store(false, Ordering::Release);
    }

    pub fn restoring(&self) -> bool {
        self.restoring.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_expires_and_belongs_to_one_backup() {
        let m = Maintenance::default();
        assert!(!m.refresh_paused(100));
        m.pause("b1", 100, 160).unwrap();
        assert!(m.refresh_paused(159));
        assert!(
            !m.refresh_paused(160),
            "the deadline lifts the pause by itself"
        );
        assert_eq!(m.pause("b2", 120, 180), Err("b1".to_string()));
        assert!(!m.resume("b2", 120), "another backup cannot lift it");
        assert!(m.resume("b1", 120));
        assert!(!m.refresh_paused(121));
        m.pause("b1", 100, 160).unwrap();
        m.pause("b2", 170, 230)
            .expect("an expired pause is free again");
    }
}
