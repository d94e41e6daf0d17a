"""Numeric constants of the nfnetlink / nf_tables protocol (uapi `nfnetlink.h`, `nf_tables.h`).

Only what this library encodes or decodes is listed. Attribute numbers are plain ints (they are used on the hot
path); values that users pick are enums in `_model.py`.
"""

from __future__ import annotations

# --- netlink -------------------------------------------------------------------------------------------------------
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x001
NLM_F_ACK = 0x004
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100  # on NLMSG_ERROR replies: the echoed request is cut to its header
NLM_F_ACK_TLVS = 0x200  # on NLMSG_ERROR replies: extended ACK attributes follow
NLM_F_DUMP_INTR = 0x010  # on dump replies: the dump was interrupted by a change (it may be inconsistent)

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_OFFS = 2

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

# --- nfnetlink -----------------------------------------------------------------------------------------------------
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFNL_BATCH_GENID = 1

# --- nf_tables messages (nlmsg_type = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*) -----------------------------------------
NFT_MSG_NEWTABLE = 0
NFT_MSG_GETTABLE = 1
NFT_MSG_DELTABLE = 2
NFT_MSG_NEWCHAIN = 3
NFT_MSG_GETCHAIN = 4
NFT_MSG_DELCHAIN = 5
NFT_MSG_NEWRULE = 6
NFT_MSG_GETRULE = 7
NFT_MSG_DELRULE = 8
NFT_MSG_NEWSET = 9
NFT_MSG_GETSET = 10
NFT_MSG_DELSET = 11
NFT_MSG_NEWSETELEM = 12
NFT_MSG_GETSETELEM = 13
NFT_MSG_DELSETELEM = 14
NFT_MSG_GETGEN = 16
NFT_MSG_DESTROYTABLE = 26
NFT_MSG_DESTROYCHAIN = 27
NFT_MSG_DESTROYRULE = 28
NFT_MSG_DESTROYSET = 29

# --- attributes ----------------------------------------------------------------------------------------------------
NFTA_LIST_ELEM = 1

NFTA_TABLE_NAME = 1
NFTA_TABLE_FLAGS = 2

NFTA_CHAIN_TABLE = 1
NFTA_CHAIN_NAME = 3
NFTA_CHAIN_HOOK = 4
NFTA_CHAIN_POLICY = 5
NFTA_CHAIN_TYPE = 7
NFTA_HOOK_HOOKNUM = 1
NFTA_HOOK_PRIORITY = 2

NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_RULE_HANDLE = 3
NFTA_RULE_EXPRESSIONS = 4
NFTA_RULE_USERDATA = 7
NFTA_EXPR_NAME = 1
NFTA_EXPR_DATA = 2

NFTA_SET_TABLE = 1
NFTA_SET_NAME = 2
NFTA_SET_FLAGS = 3
NFTA_SET_KEY_TYPE = 4
NFTA_SET_KEY_LEN = 5
NFTA_SET_DATA_TYPE = 6
NFTA_SET_DATA_LEN = 7
NFTA_SET_DESC = 9
NFTA_SET_ID = 10
NFTA_SET_USERDATA = 13
NFTA_SET_DESC_SIZE = 1
NFTA_SET_DESC_CONCAT = 2
NFTA_SET_FIELD_LEN = 1

NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_SET_ELEM_LIST_SET_ID = 4
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_DATA = 2
NFTA_SET_ELEM_FLAGS = 3
NFTA_SET_ELEM_KEY_END = 10
NFT_SET_ELEM_INTERVAL_END = 1

NFTA_DATA_VALUE = 1
NFTA_DATA_VERDICT = 2
NFTA_VERDICT_CODE = 1
NFTA_VERDICT_CHAIN = 2

NFTA_GEN_ID = 1

# nftnl "udata" TLVs stored in NFTA_*_USERDATA (libnftnl `udata.h`): {u8 type, u8 len, value}
NFTNL_UDATA_RULE_COMMENT = 0
NFTNL_UDATA_SET_KEYBYTEORDER = 0
NFTNL_UDATA_SET_DATABYTEORDER = 1
NFTNL_UDATA_SET_DATA_INTERVAL = 6
NFT_BYTEORDER_HOST = 1
NFT_BYTEORDER_BIG = 2

# --- registers -----------------------------------------------------------------------------------------------------
NFT_REG_VERDICT = 0
NFT_REG_1 = 1
NFT_REG32_00 = 8

NFT_DATA_VERDICT = 0xFFFFFF00
SET_ELEM_NEST_LIMIT = 60_000  # bytes of element nest per NEWSETELEM message (nla_len is u16)
