//! The action that involves the person directly: `ask_person`, a question the job waits on (as
//! it waits for an approval), answered from the terminal, the API or the phone page. A planned
//! job asks when the request is ambiguous; a skill's step can ask too.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::{Line, Text};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// The action's name (also its tool name: it has no dot).
pub const ACTION: &str = "ask_person";

/// `ask_person`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskArgs {
    /// The question, complete in itself (the person sees it on their phone, maybe hours later).
    question: Text,
    /// Answers to offer, if the question has a few (the person may still write their own).
    #[serde(default)]
    choices: Vec<Line>,
}

/// The person's answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AskOut {
    /// What the person wrote, in their words.
    answer: String,
}

/// `ask_person`: wait for the person's answer.
pub(super) async fn ask(g: Guard, a: AskArgs, _: StepCtx) -> Result<AskOut, StepError> {
    let choices: Vec<String> = a.choices.into_iter().map(|c| c.0).collect();
    let answer = g.ask_person(&a.question.0, &choices).await?;
    Ok(AskOut { answer })
}
