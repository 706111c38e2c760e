-- Nexmark q0: pass-through (measures the cost of moving bids through the system).
SELECT auction, bidder, price, date_time FROM bid
