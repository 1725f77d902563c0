-- Why an attempt no longer holds its job, told from the job's fields as the
-- same script read them (so the answer is true at the moment the lease was
-- found lost). state, lease: the job's; token: the attempt's lease token;
-- outcome: what the attempt reports ('completed' | 'retry' | 'failed'), or
-- nil for a heartbeat. Returns
--   'deleted'     the job is gone (deleted, purged, or its record expired)
--   'cancelled'   it was cancelled
--   'recorded'    this very outcome was recorded already (a report sent again
--                 after its reply was lost)
--   'taken_over'  its lease expired and it was recovered: it waits to run
--                 again, another worker runs it, or another attempt ended it
local RECORDED_AS = { completed = 'completed', retry = 'scheduled', failed = 'failed' }

local function lease_lost(state, lease, token, outcome)
  if not state then
    return 'deleted'
  elseif state == 'cancelled' then
    return 'cancelled'
  elseif lease == token and outcome and state == RECORDED_AS[outcome] then
    return 'recorded'
  end
  return 'taken_over'
end
