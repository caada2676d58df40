"""Chat artifacts: a workspace's library of resources (personas, documents, questions, ... sixteen
kinds in one table), the customisation bundle each chat entry (an assistant) publishes from them
in numbered revisions, the versioned drafts that prepare a revision, and the chat analytics."""
