-- wrk script for `ledger_tps --client wrk`: POSTs pre-signed transactions, one per request,
-- read from the file named by $BODIES (one JSON document per line). Every transaction comes
-- from a different account, so the arrival order across connections cannot cause nonce
-- conflicts. Run with one wrk thread (-t1) so no transaction is sent twice; if the file runs
-- out the script wraps around and the replays show up as non-2xx answers.
local bodies = {}
local n = 0
local i = 0

function init(args)
  for line in io.lines(os.getenv("BODIES")) do
    n = n + 1
    bodies[n] = line
  end
end

request = function()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("POST", "/ledger/v1/txs", {["Content-Type"] = "application/json"}, bodies[i])
end
