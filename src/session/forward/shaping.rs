//! Result shapes: which upstream answers the client must see in another
//! shape than PostgreSQL sends them (a `SHOW` pgward answers with a SELECT,
//! writes pgward changed: [`Shape`]), and where they are in the stream of
//! answers.
//!
//! The client → upstream side queues an [`Expect`] for each message whose
//! answer is reshaped, before the message is complete upstream (so before
//! its answer can arrive). The upstream → client side counts the answers
//! of each ReadyForQuery cycle the way PostgreSQL produces them: every
//! message it answers (Parse, Bind, Describe, Execute, Close) ends with
//! exactly one of `1`, `2`, `T`/`n`, `C`/`I`/`s`, `3`; a Query is the last
//! message of its cycle and answers per statement (`T`, `D`…, `C` or `I`);
//! an error skips the rest of the cycle, whose entries are then dropped
//! (<https://www.postgresql.org/docs/15/protocol-flow.html>).
//!
//! Must never: decode a DataRow, or take the lock, while nothing is queued.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::statement::hook::Shape;

/// An answer to reshape: message `message` (counted from 0 among the
/// messages the upstream answers) of ReadyForQuery cycle `cycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expect {
    pub cycle: u64,
    pub message: u64,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// A Describe of a Silent statement or portal: NoData in place of the
    /// RowDescription (a ParameterDescription passes).
    NoData,
    /// The result of an Execute.
    Execute(Shape),
    /// The result of statement `statement` of a Query.
    Query { statement: u64, shape: Shape },
}

impl Expect {
    /// Where the entry sorts among the answers of a session.
    fn key(&self) -> (u64, u64, u64) {
        let statement = match self.action {
            Action::Query { statement, .. } => statement,
            Action::NoData | Action::Execute(_) => 0,
        };
        (self.cycle, self.message, statement)
    }
}

/// The entries queued by the client → upstream side, in message order.
#[derive(Default)]
pub(super) struct Expectations {
    queue: Mutex<VecDeque<Expect>>,
    /// Entries ever queued: the other side looks at the queue only when it
    /// has taken fewer.
    queued: AtomicU64,
}

impl Expectations {
    pub fn push(&self, e: Expect) {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.push_back(e);
        self.queued.fetch_add(1, Ordering::Release);
    }

    fn pop(&self) -> Option<Expect> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

/// What the upstream → client side does with one answer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Forward it untouched.
    Pass,
    /// Drop it (a Silent result's RowDescription and DataRows).
    Drop,
    /// Send NoData instead (a Describe of a Silent statement or portal).
    NoData,
    /// Give the CommandComplete this shape's tag.
    Retag(Shape),
}

/// The upstream → client side's count of answers, and the next entry.
#[derive(Default)]
pub(super) struct Shaper {
    cycle: u64,
    /// Messages of this cycle fully answered.
    message: u64,
    /// Statements of the Query being answered that completed.
    statement: u64,
    /// Entries taken from the queue.
    taken: u64,
    /// The next entry that has not been passed.
    current: Option<Expect>,
}

impl Shaper {
    /// The verdict for an answer message with tag `tag`, counting it.
    /// Cheap when nothing is queued: no lock, no decoding.
    pub fn answer(&mut self, tag: u8, queue: &Expectations) -> Verdict {
        self.refresh(queue);
        let in_query = self.current.is_some_and(|e| {
            e.cycle == self.cycle
                && e.message == self.message
                && matches!(e.action, Action::Query { .. })
        });
        let result = self.current.and_then(|e| match e.action {
            Action::Execute(shape) if !in_query && e.key() == self.position() => Some(shape),
            Action::Query { shape, .. } if in_query && e.key() == self.position() => Some(shape),
            _ => None,
        });
        let describe_silent = !in_query
            && self
                .current
                .is_some_and(|e| e.action == Action::NoData && e.key() == self.position());
        match tag {
            b'T' if in_query => {
                if result.is_some_and(Shape::rowless) {
                    Verdict::Drop
                } else {
                    Verdict::Pass
                }
            }
            b'T' | b'n' => {
                self.message += 1;
                if describe_silent && tag == b'T' {
                    Verdict::NoData
                } else {
                    Verdict::Pass
                }
            }
            b'D' if result.is_some_and(Shape::rowless) => Verdict::Drop,
            b'C' | b'I' => {
                if in_query {
                    self.statement += 1;
                } else {
                    self.message += 1;
                }
                match result {
                    Some(shape @ (Shape::Show | Shape::Tagged(_) | Shape::Counted(_)))
                        if tag == b'C' =>
                    {
                        Verdict::Retag(shape)
                    }
                    _ => Verdict::Pass,
                }
            }
            b'1' | b'2' | b'3' | b's' => {
                self.message += 1;
                Verdict::Pass
            }
            b'Z' => {
                self.cycle += 1;
                self.message = 0;
                self.statement = 0;
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    fn position(&self) -> (u64, u64, u64) {
        (self.cycle, self.message, self.statement)
    }

    /// Drops a passed entry; takes the next one from the queue when there
    /// is none.
    fn refresh(&mut self, queue: &Expectations) {
        loop {
            if let Some(e) = self.current {
                if e.key() >= self.position() {
                    return;
                }
                self.current = None;
            }
            if queue.queued.load(Ordering::Acquire) == self.taken {
                return;
            }
            self.current = queue.pop();
            if self.current.is_some() {
                self.taken += 1;
            } else {
                return;
            }
        }
    }
}

/// `SELECT n` (a CommandComplete body without its NUL) in the shape's
/// tag; `None` when the tag is not `SELECT n` or the shape keeps it.
pub(super) fn retag(tag: &[u8], shape: Shape) -> Option<Vec<u8>> {
    match shape {
        Shape::Show => Some(b"SHOW".to_vec()),
        Shape::Tagged(write) | Shape::Counted(write) => {
            let count = tag.strip_prefix(b"SELECT ")?;
            if count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut out = write.prefix().as_bytes().to_vec();
            out.push(b' ');
            out.extend_from_slice(count);
            Some(out)
        }
        Shape::Silent => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::WriteTag;

    fn run(shaper: &mut Shaper, queue: &Expectations, tags: &[u8]) -> Vec<Verdict> {
        tags.iter().map(|&t| shaper.answer(t, queue)).collect()
    }

    use Verdict::{Drop, NoData, Pass, Retag};

    #[test]
    fn nothing_queued_passes_everything() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        let v = run(&mut s, &q, b"TDDCZ12tTDCZ");
        assert!(v.iter().all(|v| *v == Pass));
        assert_eq!(s.cycle, 2);
    }

    #[test]
    fn only_the_second_statement_of_a_query_is_silent() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        q.push(Expect {
            cycle: 0,
            message: 0,
            action: Action::Query {
                statement: 1,
                shape: Shape::Silent,
            },
        });
        // SELECT (T D C), the write with pgward's RETURNING (T D D C),
        // another SELECT (T D C), ReadyForQuery; then a second Query.
        let v = run(&mut s, &q, b"TDCTDDCTDCZTDCZ");
        assert_eq!(
            v,
            vec![
                Pass, Pass, Pass, Drop, Drop, Drop, Pass, Pass, Pass, Pass, Pass, Pass, Pass, Pass,
                Pass
            ]
        );
    }

    #[test]
    fn query_statements_are_retagged_by_position() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        for (cycle, statement, shape) in [
            (0, 0, Shape::Tagged(WriteTag::Insert)),
            (0, 2, Shape::Show),
            (1, 0, Shape::Tagged(WriteTag::Delete)),
        ] {
            q.push(Expect {
                cycle,
                message: 0,
                action: Action::Query { statement, shape },
            });
        }
        let v = run(&mut s, &q, b"TDCCTDCZTDDCZ");
        assert_eq!(
            v,
            vec![
                Pass,
                Pass,
                Retag(Shape::Tagged(WriteTag::Insert)),
                Pass,
                Pass,
                Pass,
                Retag(Shape::Show),
                Pass,
                Pass,
                Pass,
                Pass,
                Retag(Shape::Tagged(WriteTag::Delete)),
                Pass
            ]
        );
    }

    #[test]
    fn extended_protocol_describe_and_execute_of_a_silent_portal() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        // Parse(0) Bind(1) Describe S(2) Describe P(3) Execute(4)
        // Execute of another portal(5) Sync.
        q.push(Expect {
            cycle: 0,
            message: 2,
            action: Action::NoData,
        });
        q.push(Expect {
            cycle: 0,
            message: 3,
            action: Action::NoData,
        });
        q.push(Expect {
            cycle: 0,
            message: 4,
            action: Action::Execute(Shape::Silent),
        });
        let v = run(&mut s, &q, b"12tTTDDCDCZ");
        assert_eq!(
            v,
            vec![
                Pass, Pass, Pass, NoData, NoData, Drop, Drop, Pass, Pass, Pass, Pass
            ]
        );
    }

    #[test]
    fn an_error_drops_the_rest_of_its_cycle() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        q.push(Expect {
            cycle: 0,
            message: 3,
            action: Action::Execute(Shape::Silent),
        });
        q.push(Expect {
            cycle: 1,
            message: 1,
            action: Action::Execute(Shape::Tagged(WriteTag::Update)),
        });
        // Cycle 0: Parse, Bind, then an error; ReadyForQuery. Cycle 1:
        // Bind, Execute (tagged), Sync.
        let v = run(&mut s, &q, b"12EZ2DCZ");
        assert_eq!(
            v,
            vec![
                Pass,
                Pass,
                Pass,
                Pass,
                Pass,
                Pass,
                Retag(Shape::Tagged(WriteTag::Update)),
                Pass
            ]
        );
    }

    #[test]
    fn executes_of_a_suspended_portal_count_once_each() {
        let (mut s, q) = (Shaper::default(), Expectations::default());
        q.push(Expect {
            cycle: 0,
            message: 3,
            action: Action::Execute(Shape::Show),
        });
        // Bind, Execute (suspended), Execute (suspended), Execute (done).
        let v = run(&mut s, &q, b"2DsDsDCZ");
        assert_eq!(v[6], Retag(Shape::Show));
        assert!(v[..6].iter().all(|v| *v == Pass));
    }

    #[test]
    fn retagging_keeps_the_count() {
        assert_eq!(
            retag(b"SELECT 3", Shape::Tagged(WriteTag::Insert)).unwrap(),
            b"INSERT 0 3"
        );
        assert_eq!(
            retag(b"SELECT 0", Shape::Tagged(WriteTag::Update)).unwrap(),
            b"UPDATE 0"
        );
        assert_eq!(
            retag(b"SELECT 12", Shape::Tagged(WriteTag::Delete)).unwrap(),
            b"DELETE 12"
        );
        assert_eq!(retag(b"SELECT 1", Shape::Show).unwrap(), b"SHOW");
        assert_eq!(retag(b"UPDATE 3", Shape::Tagged(WriteTag::Update)), None);
        assert_eq!(retag(b"SELECT ", Shape::Tagged(WriteTag::Update)), None);
        assert_eq!(retag(b"UPDATE 3", Shape::Silent), None);
    }
}
