"""netlink_nft: a sans-IO nftables netlink encoder with atomic batched transactions."""
