-- The Nexmark demo of docker/compose.yaml, run once by psql when eddy is healthy:
-- a generated auction source, live views over it, and one view written to a Kafka topic.
-- Every statement is IF NOT EXISTS, so running it again (a later `up`) changes nothing.

-- Event time follows the wall clock: the first event is now, then 1 ms per event.
SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms \gset

CREATE SOURCE IF NOT EXISTS nexmark WITH (
  connector = 'nexmark', rate = 1000, inter_event_delay_us = 1000,
  base_time = :now_ms, retention = '1 minute');

CREATE MATERIALIZED VIEW IF NOT EXISTS bids_per_channel AS
  SELECT channel, count(*) AS bids, count(DISTINCT bidder) AS bidders, max(price) AS top_price
  FROM bid GROUP BY channel;

CREATE MATERIALIZED VIEW IF NOT EXISTS bids_per_10s AS
  SELECT window_start, window_end, count(*) AS bids, avg(price) AS avg_price
  FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
  GROUP BY window_start, window_end;

CREATE MATERIALIZED VIEW IF NOT EXISTS hot_auctions AS
  SELECT b.auction, a.item_name, count(*) AS bids
  FROM bid b JOIN auction a WITHIN 1 HOUR ON b.auction = a.id
  GROUP BY b.auction, a.item_name;

-- Upserts to the topic hot_auctions on the broker: per auction whose count changed, one
-- record keyed by the auction.
CREATE SINK IF NOT EXISTS hot_auctions_out FROM hot_auctions
  WITH (connector = 'kafka', topic = 'hot_auctions') FORMAT UPSERT ENCODE JSON;

SELECT name, connector, streams, status FROM eddy_sources;
