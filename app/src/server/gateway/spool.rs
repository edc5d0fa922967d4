//! The meter's write-ahead spool. Every usage event is appended to a local
//! file before it is queued for the database, so a process killed before the
//! meter wrote it loses nothing: the next start replays the spool (an event is
//! written once, by its id) before it counts this month's spend.
//!
//! The spool is a directory of segment files of JSON lines. A segment is
//! sealed after `SEGMENT_EVENTS` events and deleted once every event in it is
//! in the database. The directory belongs to one process at a time (a lock
//! file says so): give each replica its own.
//!
//! The meter's memory is bounded: an event it has no room for (its queue is
//! full, or it gave up retrying the batch) stays in the spool only, and its
//! segment is marked spilled; the meter reads spilled segments back when it
//! has caught up.
//!
//! An append is a `write` to a file the kernel keeps when the process dies,
//! so SIGKILL loses only calls still in flight. (A power cut may lose the last
//! events the kernel had not flushed: that would need an fsync per call.)

use std::{
    collections::{BTreeSet, HashMap},
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use super::meter::UsageEvent;

/// Events per segment file before a new one is started.
const SEGMENT_EVENTS: u64 = 10_000;

pub struct Spool {
    dir: PathBuf,
    state: Mutex<Segments>,
    /// Held open, and locked, while this process owns the directory.
    _lock: File,
}

struct Segments {
    /// The segment appended to.
    current: u64,
    file: File,
    appended: u64,
    /// Per segment: events appended and not yet written to the database.
    outstanding: HashMap<u64, u64>,
    /// Segments holding events that only the file holds.
    spilled: BTreeSet<u64>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("usage-{segment:012}.jsonl"))
}

fn open_segment(dir: &Path, segment: u64) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(segment_path(dir, segment))
}

/// The segments in `dir`, oldest first.
fn segments_in(dir: &Path) -> io::Result<Vec<u64>> {
    let mut segments: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("usage-")?.strip_suffix(".jsonl")?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    Ok(segments)
}

/// The events of one segment; a line cut short by a kill is skipped.
fn read_segment(dir: &Path, segment: u64) -> io::Result<Vec<UsageEvent>> {
    let file = File::open(segment_path(dir, segment))?;
    let mut events = Vec::new();
    for line in BufReader::new(file).lines() {
        match serde_json::from_str(&line?) {
            Ok(event) => events.push(event),
            Err(error) => tracing::warn!(%error, segment, "a usage spool line is unreadable; skipped"),
        }
    }
    Ok(events)
}

/// What an earlier process left in the spool: to write, then `forget`.
pub struct Leftovers {
    pub events: Vec<UsageEvent>,
    segments: Vec<u64>,
}

impl Spool {
    /// Takes the spool directory (creating it) and returns what an earlier
    /// process left unwritten.
    pub fn open(dir: &Path) -> io::Result<(Self, Leftovers)> {
        fs::create_dir_all(dir)?;
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("spool.lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::other(format!("another Chancery process uses the usage spool {}", dir.display()))
        })?;
        let segments = segments_in(dir)?;
        let mut events = Vec::new();
        for &segment in &segments {
            events.extend(read_segment(dir, segment)?);
        }
        let current = segments.last().map_or(0, |last| last + 1);
        let state = Segments {
            current,
            file: open_segment(dir, current)?,
            appended: 0,
            outstanding: HashMap::new(),
            spilled: BTreeSet::new(),
        };
        Ok((
            Self { dir: dir.to_path_buf(), state: Mutex::new(state), _lock: lock },
            Leftovers { events, segments },
        ))
    }

    /// Deletes the segments an earlier process left, once their events are written.
    pub fn forget(&self, leftovers: Leftovers) {
        for segment in leftovers.segments {
            self.remove(segment);
        }
    }

    fn remove(&self, segment: u64) {
        if let Err(error) = fs::remove_file(segment_path(&self.dir, segment)) {
            tracing::warn!(%error, segment, "a written usage spool segment could not be deleted");
        }
    }

    /// Appends `event` and returns its segment.
    pub fn append(&self, event: &UsageEvent) -> io::Result<u64> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.appended >= SEGMENT_EVENTS {
            self.seal(&mut state)?;
        }
        state.file.write_all(&line)?;
        state.appended += 1;
        let segment = state.current;
        *state.outstanding.entry(segment).or_default() += 1;
        Ok(segment)
    }

    /// Starts a new segment; the current one is sealed.
    fn seal(&self, state: &mut Segments) -> io::Result<()> {
        let next = state.current + 1;
        state.file = open_segment(&self.dir, next)?;
        state.current = next;
        state.appended = 0;
        Ok(())
    }

    /// Notes that `count` events of `segment` are in the database; a sealed
    /// segment with none left outstanding is deleted. (A segment read back
    /// whole is gone already: its events' notes are ignored.)
    pub fn written(&self, segment: u64, count: u64) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(left) = state.outstanding.get_mut(&segment) else { return };
        *left = left.saturating_sub(count);
        if *left == 0 && segment != state.current {
            state.outstanding.remove(&segment);
            drop(state);
            self.remove(segment);
        }
    }

    /// Notes that an event of `segment` is in the file only: the meter had no
    /// room for it.
    pub fn spill(&self, segment: u64) {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).spilled.insert(segment);
    }

    pub fn has_spilled(&self) -> bool {
        !self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).spilled.is_empty()
    }

    /// The oldest spilled segment, sealed (so that nothing more is appended to
    /// it), and its events: to write, then `read_back`.
    pub fn oldest_spilled(&self) -> io::Result<Option<(u64, Vec<UsageEvent>)>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(&segment) = state.spilled.first() else { return Ok(None) };
        if segment == state.current {
            self.seal(&mut state)?;
        }
        drop(state);
        Ok(Some((segment, read_segment(&self.dir, segment)?)))
    }

    /// Deletes a spilled segment whose events are all in the database now.
    pub fn read_back(&self, segment: u64) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.spilled.remove(&segment);
        state.outstanding.remove(&segment);
        drop(state);
        self.remove(segment);
    }

    /// Seals the current segment once all of it is written (at shutdown): the
    /// spool is then empty.
    pub fn close(&self) {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.spilled.is_empty() && state.outstanding.values().all(|left| *left == 0) {
            let current = state.current;
            drop(state);
            self.remove(current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ids::{ApiKeyId, OrgId, WorkspaceId},
        server::gateway::Outcome,
        time::Timestamp,
    };

    fn event(n: u128) -> UsageEvent {
        UsageEvent {
            id: uuid::Uuid::from_u128(n),
            at: Timestamp(1),
            org_id: OrgId(uuid::Uuid::from_u128(1)),
            workspace_id: WorkspaceId(uuid::Uuid::from_u128(2)),
            key_id: ApiKeyId(uuid::Uuid::from_u128(3)),
            model: "m".into(),
            status: 200,
            outcome: Outcome::Ok,
            upstream_status: Some(200),
            input_tokens: 1,
            output_tokens: 2,
            usage_estimated: false,
            held_micros: 5,
            cost_micros: 3,
            latency_ms: 4,
        }
    }

    #[test]
    fn what_a_killed_process_appended_is_there_at_the_next_start_and_only_once() {
        let dir = std::env::temp_dir().join(format!("chancery-spool-{}", uuid::Uuid::new_v4().simple()));
        let (spool, leftovers) = Spool::open(&dir).unwrap();
        assert!(leftovers.events.is_empty());
        assert!(Spool::open(&dir).is_err(), "one process per spool");
        let segment = spool.append(&event(10)).unwrap();
        spool.append(&event(11)).unwrap();
        spool.written(segment, 1);
        // A kill: the spool is dropped without closing, with a torn last line.
        let mut file = OpenOptions::new().append(true).open(segment_path(&dir, segment)).unwrap();
        file.write_all(b"{\"id\":\"cut sho").unwrap();
        drop(spool);
        let (spool, leftovers) = Spool::open(&dir).unwrap();
        let ids: Vec<_> = leftovers.events.iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(ids, [10, 11], "replayed by id, so the one written already counts once");
        spool.forget(leftovers);
        spool.close();
        assert_eq!(segments_in(&dir).unwrap(), Vec::<u64>::new());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_spilled_segment_is_sealed_read_back_whole_and_then_gone() {
        let dir = std::env::temp_dir().join(format!("chancery-spool-{}", uuid::Uuid::new_v4().simple()));
        let (spool, _) = Spool::open(&dir).unwrap();
        let queued = spool.append(&event(1)).unwrap();
        let spilled = spool.append(&event(2)).unwrap();
        assert_eq!(queued, spilled);
        spool.spill(spilled);
        spool.written(queued, 1);
        assert!(spool.has_spilled());
        let (segment, events) = spool.oldest_spilled().unwrap().unwrap();
        assert_eq!(segment, spilled);
        let ids: Vec<_> = events.iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(ids, [1, 2], "the whole segment: writing one twice counts it once");
        let next = spool.append(&event(3)).unwrap();
        assert_ne!(next, segment, "sealed: later events go to a new segment");
        spool.read_back(segment);
        spool.written(segment, 1);
        assert!(!spool.has_spilled());
        assert_eq!(segments_in(&dir).unwrap(), vec![next]);
        spool.written(next, 1);
        spool.close();
        assert_eq!(segments_in(&dir).unwrap(), Vec::<u64>::new());
        fs::remove_dir_all(dir).unwrap();
    }
}
