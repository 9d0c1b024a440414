//! When a live stream's words become final: the commit policies.

use super::LiveWord;

/// Which words of a decoding pass to commit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CommitPolicy {
    /// LocalAgreement-2: commit the longest common prefix (by words) of the
    /// last two passes' uncommitted words.
    LocalAgreement,
    /// AlignAtt-style: commit the words whose alignment (the alignment
    /// heads' cross-attention through DTW, as word timestamps compute it)
    /// ends more than `margin_s` before the end of the audio decoded; the
    /// newest words, attended near the end, wait for more audio.
    AlignAtt {
        /// Seconds before the audio's end within which words stay tentative.
        margin_s: f64,
    },
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy::AlignAtt { margin_s: 0.5 }
    }
}

impl std::str::FromStr for CommitPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local-agreement" | "localagreement" | "la" => Ok(CommitPolicy::LocalAgreement),
            "alignatt" | "align-att" => Ok(CommitPolicy::default()),
            other => Err(format!(
                "'{other}' is not a commit policy: use local-agreement or alignatt"
            )),
        }
    }
}

/// A word as compared between passes: lower case, letters and digits only.
pub(crate) fn norm(w: &str) -> String {
    w.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl CommitPolicy {
    /// How many of `current` (this pass's uncommitted words, in order) to
    /// commit, given the previous pass's uncommitted words and the end of
    /// the audio this pass decoded (seconds, stream time).
    pub(crate) fn commit_count(
        &self,
        previous: &[LiveWord],
        current: &[LiveWord],
        audio_end: f64,
    ) -> usize {
        match *self {
            CommitPolicy::LocalAgreement => previous
                .iter()
                .zip(current)
                .take_while(|(a, b)| norm(&a.text) == norm(&b.text))
                .count(),
            CommitPolicy::AlignAtt { margin_s } => current
                .iter()
                .take_while(|w| w.end <= audio_end - margin_s)
                .count(),
        }
    }
}

/// How many leading words of `new` repeat the tail of `committed` (an
/// n-gram of up to 5 words, the longest match), so that words a pass
/// re-decodes from before the last commit are not committed twice.
pub(crate) fn overlap(committed: &[LiveWord], new: &[LiveWord]) -> usize {
    let max = committed.len().min(new.len()).min(5);
    (1..=max)
        .rev()
        .find(|&n| {
            committed[committed.len() - n..]
                .iter()
                .zip(&new[..n])
                .all(|(a, b)| norm(&a.text) == norm(&b.text))
        })
        .unwrap_or(0)
}

/// Where this pass's new words begin: `by_time` (the first word past the
/// last committed word's end), moved to just after the last committed words
/// where the text shows them near it (at most 3 words away). Two or more
/// matching words are needed, or one right next to `by_time`, so that a
/// common word said again is not taken for the committed one.
pub(crate) fn resume_at(committed: &[LiveWord], words: &[LiveWord], by_time: usize) -> usize {
    let max = committed.len().min(5);
    for n in (1..=max).rev() {
        let tail: Vec<String> = committed[committed.len() - n..]
            .iter()
            .map(|w| norm(&w.text))
            .collect();
        let reach = if n >= 2 { 3 } else { 1 };
        // Nearest first, earlier before later at the same distance.
        for d in 0..=reach {
            for p in [by_time.checked_sub(d), by_time.checked_add(d)] {
                let Some(p) = p.filter(|&p| p >= n && p <= words.len()) else {
                    continue;
                };
                if words[p - n..p]
                    .iter()
                    .zip(&tail)
                    .all(|(w, t)| norm(&w.text) == *t)
                {
                    return p;
                }
            }
        }
    }
    by_time
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str, start: f64, end: f64) -> LiveWord {
        LiveWord {
            text: t.into(),
            start,
            end,
        }
    }

    #[test]
    fn local_agreement_commits_the_common_prefix() {
        let a = [w(" And", 0.0, 0.3), w(" so", 0.3, 0.5), w(" my", 0.6, 0.8)];
        let b = [w(" and", 0.0, 0.3), w(" so,", 0.3, 0.5), w(" me", 0.6, 0.8)];
        assert_eq!(CommitPolicy::LocalAgreement.commit_count(&a, &b, 1.0), 2);
        assert_eq!(CommitPolicy::LocalAgreement.commit_count(&[], &b, 1.0), 0);
    }

    #[test]
    fn alignatt_waits_for_words_near_the_end() {
        let b = [w(" a", 0.0, 0.3), w(" b", 0.3, 0.5), w(" c", 0.6, 0.8)];
        let p = CommitPolicy::AlignAtt { margin_s: 0.3 };
        assert_eq!(p.commit_count(&[], &b, 1.0), 2);
        assert_eq!(p.commit_count(&[], &b, 2.0), 3);
        assert_eq!(
            "alignatt".parse::<CommitPolicy>(),
            Ok(CommitPolicy::default())
        );
        assert!("greedy".parse::<CommitPolicy>().is_err());
    }

    #[test]
    fn the_boundary_follows_the_text() {
        let c = [w(" Ask", 8.1, 8.6), w(" what", 8.6, 9.3)];
        // This pass puts "you" before the committed end: kept all the same.
        let n = [
            w(" Ask", 8.1, 8.6),
            w(" what", 8.6, 8.9),
            w(" you", 8.9, 9.2),
            w(" can", 9.2, 9.4),
        ];
        assert_eq!(resume_at(&c, &n, 3), 2);
        // And a pass that repeats committed words past the time boundary.
        assert_eq!(resume_at(&c, &n, 1), 2);
        // No committed words in sight: by time.
        let other = [w(" x", 0.0, 1.0), w(" y", 1.0, 2.0)];
        assert_eq!(resume_at(&c, &other, 1), 1);
        assert_eq!(resume_at(&[], &n, 2), 2);
    }

    #[test]
    fn repeated_words_are_found() {
        let c = [
            w(" ask", 0.0, 0.1),
            w(" not", 0.1, 0.2),
            w(" what", 0.2, 0.3),
        ];
        let n = [
            w(" not", 0.1, 0.2),
            w(" what", 0.2, 0.3),
            w(" your", 0.3, 0.4),
        ];
        assert_eq!(overlap(&c, &n), 2);
        assert_eq!(overlap(&c, &n[2..]), 0);
    }
}
