//! A URL field of the desired state, checked by the one rule in [`crate::desired::urls`].

use super::super::source::Target;
use super::super::urls::{self, Query};
use super::{Checker, Origin};

impl Checker<'_> {
    /// Reports what [`urls::check`] finds in the URL at `below`; whether it is usable.
    pub(super) fn url(
        &mut self,
        origin: &Origin,
        below: &str,
        url: &str,
        query: Query,
        expected: &str,
    ) -> bool {
        let Err(problem) = urls::check(url, query) else {
            return true;
        };
        let d = self
            .diagnostic(
                origin,
                below,
                Target::Value,
                format!("this URL is not usable: {problem}"),
            )
            .expected(expected);
        self.report(d);
        false
    }
}
