"""user.commands (PauseStrategy, SetRiskLimit, EngageKillSwitch, ...) -> trading.commands,
keyed by the account the command names (else the trading account), so the ledger applies
it in order with the account's orders and marks."""

from __future__ import annotations

from faust import StreamT

from schemas.records import COMMAND_TYPES, Command, Event
from streams.errors import UnexpectedRecordType
from streams.faust.context import WorkerApp

AGENT = "trading.user_commands"


def install(app: WorkerApp) -> None:
    """Register the agent that forwards user commands to their account's ledger."""
    topics = app.typed_topics
    default = app.settings.trading_account

    @app.agent(topics["user.commands"].faust, name=AGENT)
    async def user_commands(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                command = app.decode_valid(message.value, Event)
                if not isinstance(command, COMMAND_TYPES):
                    raise UnexpectedRecordType(f"{type(command).__name__} on {message.topic}")
                await topics["trading.commands"].send(command, key=command_account(command, default))
            app.count_processed(AGENT)


def command_account(command: Command, default: str) -> str:
    """The account a user command goes to: the one it names, else the trading account."""
    return command.account or default
