# walkthrough.gdb - 07-completion-port: a guided tour. Start with: make gdb M=07
# (add ARGS="-t 2" for two workers; the default is one per CPU)
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
# A new thread is news the first time only.
set print thread-events off

break on_accept if done->error == 0
commands
  silent
  echo \n[tour 1] on_accept: an AcceptEx-style accept completed, on a worker thread\n
  echo The completion (GetQueuedCompletionStatus's out-parameters): fd is the new socket\n
  print *done
  echo Its key is the listener's; the conn reserved when the accept was posted:\n
  set var $c = (struct conn *) done->io->accept_handle->key
  print $c->handle
  print $c->refs
  echo Every thread: main (in sigsuspend), the workers (one here, the rest waiting):\n
  info threads
  if $tour_batch
    continue
  end
end

break conn_post
commands
  silent
  echo \n[tour 2] conn_post: post the next operation (CPORT_RECV or CPORT_SEND) on this conn\n
  print op
  echo refs counts the operations in flight; the one being handled still holds its own:\n
  print c->refs
  print c->handle
  if $tour_batch
    continue
  end
end

break on_recv_complete
commands
  silent
  echo \n[tour 3] on_recv_complete: a recv finished; bytes = what the kernel put in c->echo\n
  print *done
  echo The per-socket context (the completion key): the bytes are there, not yet counted\n
  set var $c = (struct conn *) done->key
  print $c->handle
  print $c->echo
  print $c->peer
  echo The per-I/O context (the OVERLAPPED) that came back with it:\n
  print *done->io
  echo Which worker took it (the -vv log says it too):\n
  print worker_id
  if $tour_batch
    continue
  end
end

break on_send_complete
commands
  silent
  echo \n[tour 4] on_send_complete: the echo was sent (a short send posts the rest)\n
  print done->bytes
  print ((struct conn *) done->key)->echo.len
  echo Where each thread is now:\n
  thread apply all bt 3
  if $tour_batch
    continue
  end
end

break conn_close if c->handle.fd != -1
commands
  silent
  echo \n[tour 5] conn_close: the last reference is gone, nothing is in flight: close, reuse\n
  print c->refs
  print c->handle
  print conn_pool.free_count
  if $tour_batch
    continue
  end
end

break shutdown_server
commands
  silent
  echo \n[tour 6] shutdown_server: main cancels, waits for every completion, posts quits\n
  print port.in_flight
  print port.cq_entries
  print accepts_posted
  info threads
  if $tour_batch
    continue
  end
end

echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9007\n
