"""Kafka I/O without Faust: the topic catalog, the Avro codec and schema registry, the JSON form of
events, the producer, the group-less readers (consumer, offset ranges) and admin."""
