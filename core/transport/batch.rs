//! A batch of op snippets on its way through a host's shells (see `shell.rs`): its shell
//! text, where its answer goes, and the queue of batches a shell owes answers for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::shell::Frame;

/// The status of the one frame a shell answers for a batch that another shell claimed.
pub const SKIPPED: &str = "s";

/// What a batch's sender hears: its frames, or why the shell is gone.
pub type Answer = Result<Vec<Frame>, String>;

/// One batch of op snippets, written to one shell or (see the claims in `shell.rs`) to two.
pub struct Request {
    /// The snippets as shell text, without the claim guard.
    pub(super) text: String,
    /// Frames it answers with: one per snippet.
    pub(super) frames: usize,
    /// The claim's path on the host, chosen by the first shell it is written to.
    pub(super) claim: Mutex<Option<String>>,
    /// Taken by whoever answers.
    reply: Mutex<Option<oneshot::Sender<Answer>>>,
    /// How many shells hold it in their queue.
    holders: AtomicUsize,
}

impl Request {
    /// A batch of compiled op snippets, run in order until the first failure, and where its
    /// answer arrives.
    pub fn new(snippets: &[String], check_mode: bool) -> (Arc<Request>, oneshot::Receiver<Answer>) {
        // Each snippet becomes the body of `gr_op`, called in the session shell itself (no
        // subshell); "would change" (`gr_s=w`) is a success.
        let mut text = format!("gr_ok=1; GR_CHECK={}\n", u8::from(check_mode));
        for snippet in snippets {
            text.push_str(&format!(
                "if [ $gr_ok = 1 ]; then gr_s=; gr_changed=; gr_op() {{\n{snippet}\n}}\n\
                 gr_op </dev/null 2>\"${{T}}e\"; gr_rc=$?; [ \"$gr_s\" = w ] && gr_rc=0; [ $gr_rc = 0 ] || gr_ok=0\n\
                 else gr_rc=-; gr_s=; : >\"${{T}}e\"; fi\n\
                 printf '\\n%s R %s %s\\n' \"$M\" \"$gr_rc\" \"$gr_s\"; [ -s \"${{T}}e\" ] && cat \"${{T}}e\"; printf '\\n%s E\\n' \"$M\"\n",
            ));
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            text,
            frames: snippets.len(),
            claim: Mutex::new(None),
            reply: Mutex::new(Some(reply)),
            holders: AtomicUsize::new(0),
        };
        (Arc::new(request), answer)
    }

    /// Whether its answer was given (or can no longer be).
    pub fn is_answered(&self) -> bool {
        self.reply.lock().expect("reply lock").is_none()
    }

    /// Its claim's path on the host, once it was written to a shell.
    pub fn claim(&self) -> Option<String> {
        self.claim.lock().expect("claim lock").clone()
    }

    /// Gives its answer, unless it was given.
    pub fn answer(&self, answer: Answer) {
        if let Some(reply) = self.reply.lock().expect("reply lock").take() {
            let _ = reply.send(answer);
        }
    }

    /// One shell lets go of it; returns whether no shell holds it any more.
    pub(super) fn release(&self) -> bool {
        self.holders.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// Batches longer than this count as this long in [`Queue::typical`].
const TYPICAL_CAP: Duration = Duration::from_millis(500);

/// The batches a shell owes answers for, in the order it runs them.
#[derive(Default)]
pub struct Queue {
    /// Front first; the front one is running.
    pub(super) batches: VecDeque<Arc<Request>>,
    /// When the batch at the front started running (when the one before it answered).
    pub(super) front_since: Option<Instant>,
    /// A moving average of how long its batches ran.
    pub(super) typical: Option<Duration>,
}

impl Queue {
    /// Adds a batch at the back.
    pub(super) fn push(&mut self, request: Arc<Request>) {
        if self.batches.is_empty() {
            self.front_since = Some(Instant::now());
        }
        request.holders.fetch_add(1, Ordering::AcqRel);
        self.batches.push_back(request);
    }

    /// Removes the front batch; `ran` says it ran here (its time counts in `typical`).
    pub(super) fn pop(&mut self, ran: bool) {
        if let (true, Some(since)) = (ran, self.front_since) {
            let took = since.elapsed().min(TYPICAL_CAP);
            self.typical = Some(self.typical.map_or(took, |t| (t * 3 + took) / 4));
        }
        self.batches.pop_front();
        self.front_since = (!self.batches.is_empty()).then(Instant::now);
    }
}
