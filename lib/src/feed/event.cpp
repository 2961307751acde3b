#include "tickinfer/feed/event.hpp"

namespace tickinfer::feed {

const char* to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::kNone:
      return "none";
    case EventKind::kAdd:
      return "add";
    case EventKind::kExecute:
      return "execute";
    case EventKind::kCancel:
      return "cancel";
    case EventKind::kDelete:
      return "delete";
    case EventKind::kReplace:
      return "replace";
    case EventKind::kTrade:
      return "trade";
    case EventKind::kCrossTrade:
      return "cross_trade";
    case EventKind::kBrokenTrade:
      return "broken_trade";
    case EventKind::kQuote:
      return "quote";
    case EventKind::kSystem:
      return "system";
    case EventKind::kSymbolDirectory:
      return "symbol_directory";
    case EventKind::kTradingStatus:
      return "trading_status";
    case EventKind::kRegSho:
      return "reg_sho";
    case EventKind::kParticipantPosition:
      return "participant_position";
    case EventKind::kMwcbDeclineLevel:
      return "mwcb_decline_level";
    case EventKind::kMwcbStatus:
      return "mwcb_status";
    case EventKind::kIpoQuotingPeriod:
      return "ipo_quoting_period";
    case EventKind::kLuldCollar:
      return "luld_collar";
    case EventKind::kOperationalHalt:
      return "operational_halt";
    case EventKind::kImbalance:
      return "imbalance";
    case EventKind::kRetailInterest:
      return "retail_interest";
    case EventKind::kDirectListing:
      return "direct_listing";
    case EventKind::kCount:
      break;
  }
  return "unknown";
}

}  // namespace tickinfer::feed
