"""What a valid record is (pure): field rules, the rules of each record type and of user commands,
and where a dead letter may be re-sent."""
