//! The domain's test suite: given past events, when a command is decided in a context, then these
//! events or this error; the candidate messages; and property tests over random command sequences.

mod authorisation;
mod candidate_messages;
mod convocations;
mod deadline_extension;
mod deadlines_across_seasons;
mod deposit_at_the_counter;
mod deposit_by_post;
mod deposit_online;
mod lifecycle;
mod pre_registration;
mod properties;
mod refused_forms;
mod review;
mod support;
