"""Sources to raw: the record reader, the event contract, the COPY loader, the Shopify client, the DLQ."""
