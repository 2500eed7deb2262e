"""The pipeline's one definition: its steps in order, and the engines that coordinate them.

Everything that depends on which steps exist follows this table: the orchestrator iterates it,
the choreography's event chain and rule patterns derive from it, the CLI's function names and
the state machine's function substitutions are named from it. What cannot be derived at run time
is checked against it: ``tests/unit/test_pipeline_definition.py`` reads ``template.yaml`` and
``statemachines/pipeline.asl.json`` and names any resource, variable, output or Task a step
lacks; ``baton build`` writes each Task's ``Retry`` from the step's policy.

Adding a step: its folder under ``functions/`` (``handler.py`` and ``entry.py``), its entry
here, its resources in ``template.yaml`` and its Task in the ASL; the tests say what is missing.

Naming is by convention from ``name`` (a step ``scraper`` is ``functions/scraper/``, template
resource ``ScraperFunction`` (handler ``scraper.entry.lambda_handler``), stack output ``ScraperFunctionName``,
orchestrator variable ``SCRAPER_FUNCTION_NAME``, ASL substitution ``${ScraperFunctionArn}``), so
no list of these names is written anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pipeline.models import (
    Contract,
    ModerationResult,
    ScrapedPage,
    ScrapeRequest,
    StoredRecord,
    TransformedPage,
)
from pipeline.policy import POLICY, RetryPolicy

# The three ways the same steps are coordinated, by the names every engine reports.
ORCHESTRATOR = "orchestrator"
STEPFUNCTIONS = "stepfunctions"
CHOREOGRAPHY = "choreography"
ENGINES = (ORCHESTRATOR, STEPFUNCTIONS, CHOREOGRAPHY)

EVENT_SOURCE = "baton.pipeline"
PAGE_REQUESTED = "baton.PageRequested.v1"  # what the first step consumes


def never(output: Contract) -> bool:
    """A step after which the item always goes on."""
    return False


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: a Lambda function with a contract on each side."""

    name: str  # the function's folder and package; also the step name in every record
    state: str  # the ASL Task's name, a short sentence ("Fetch page")
    input_model: type[Contract]
    output_model: type[Contract]
    emits: str  # the detail-type of the event its output becomes (choreography)
    timeout_seconds: int  # the function's Lambda timeout, as template.yaml declares it
    policy: RetryPolicy = POLICY
    # True when this output ends the item successfully here (a 304 page: nothing to transform).
    ends_item: Callable[[Contract], bool] = field(default=never, compare=False)
    consumes: str = ""  # the previous step's event: filled in by the registry

    @property
    def title(self) -> str:
        """The name in CamelCase, the stem of every resource name (``Scraper``)."""
        return self.name.title().replace("_", "")

    @property
    def resource(self) -> str:
        """template.yaml's function, the same for every engine (its entry point ``entry.py``)."""
        return f"{self.title}Function"

    @property
    def output(self) -> str:
        """The stack output holding the deployed function's name."""
        return f"{self.title}FunctionName"

    @property
    def env_var(self) -> str:
        """The orchestrator's variable holding the function's name."""
        return f"{self.name.upper()}_FUNCTION_NAME"

    @property
    def arn_substitution(self) -> str:
        """The state machine's DefinitionSubstitutions key of the function's ARN."""
        return f"{self.title}FunctionArn"


def _chained(*steps: Step) -> tuple[Step, ...]:
    """The steps with ``consumes`` set: each reacts to the previous one's event."""
    consumed = (PAGE_REQUESTED, *(step.emits for step in steps[:-1]))
    return tuple(replace(step, consumes=event) for step, event in zip(steps, consumed, strict=True))


def _not_modified(page: Contract) -> bool:
    return isinstance(page, ScrapedPage) and page.not_modified


STEPS: tuple[Step, ...] = _chained(
    # 120 s: a choreography event's retries happen inside the function, up to four 25 s fetches.
    Step("scraper", "Fetch page", ScrapeRequest, ScrapedPage, "baton.PageScraped.v1", 120,
         ends_item=_not_modified),
    Step("transformer", "Extract text", ScrapedPage, TransformedPage,
         "baton.PageTransformed.v1", 60),
    Step("moderator", "Score toxicity", TransformedPage, ModerationResult,
         "baton.PageModerated.v1", 60),
    Step("store", "Store record", ModerationResult, StoredRecord, "baton.PageStored.v1", 60),
)
STEP = {step.name: step for step in STEPS}
FIRST = STEPS[0]
