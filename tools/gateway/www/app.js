//  The storefront: books by topic with a Buy button, and the cluster's
//  nodes refreshed every second.  Everything shown comes from the gateway's
//  JSON API; text is always set with textContent, never parsed as HTML.
'use strict';

const state = { topic: 'distributed_systems' };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

//  Calls the JSON API; resolves to {status, data} even when the gateway is
//  down (status 0)
async function call(method, path, body) {
  const options = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data };
  } catch (e) {
    return { status: 0, data: { error: 'unreachable', message: 'the gateway did not answer' } };
  }
}

function showResult(text, ok) {
  const result = document.getElementById('result');
  result.textContent = text;
  result.className = 'result ' + (ok ? 'ok' : 'fail');
}

function markTopic() {
  for (const chip of document.querySelectorAll('.chip')) {
    chip.classList.toggle('active', chip.dataset.topic === state.topic);
  }
  document.getElementById('topic').value = state.topic;
}

function bookRow(book) {
  const row = el('tr');
  row.id = 'book-' + book.item;
  row.dataset.item = book.item;
  row.append(el('td', 'title', book.title), el('td', 'num item', book.item),
             el('td', 'num cost', '$' + book.cost),
             el('td', 'num stock' + (book.stock === 0 ? ' out' : ''), book.stock));
  const cell = el('td', 'buy');
  const button = el('button', 'buy-button', book.stock === 0 ? 'Sold out' : 'Buy');
  button.type = 'button';
  button.disabled = book.stock === 0;
  button.addEventListener('click', () => buy(book, button));
  cell.append(button);
  row.append(cell);
  return row;
}

async function loadBooks() {
  const path = state.topic ? '/books?topic=' + encodeURIComponent(state.topic) : '/books';
  const { status, data } = await call('GET', path);
  const rows = document.getElementById('book-rows');
  rows.replaceChildren();
  if (status !== 200) {
    const row = el('tr', 'empty');
    const cell = el('td', '', (data && data.message) || 'The store did not answer.');
    cell.colSpan = 5;
    row.append(cell);
    rows.append(row);
    return;
  }
  const books = (data.books || []).slice().sort((a, b) => a.title.localeCompare(b.title));
  if (books.length === 0) {
    const row = el('tr', 'empty');
    const cell = el('td', '', 'No books on ' + state.topic + '.');
    cell.colSpan = 5;
    row.append(cell);
    rows.append(row);
  }
  for (const book of books) rows.append(bookRow(book));
}

async function buy(book, button) {
  button.disabled = true;
  const { status, data } = await call('POST', '/orders', { item: book.item });
  if (status === 201) {
    showResult('Bought "' + book.title + '" for $' + data.cost + ': order ' + data.order_id + '.', true);
  } else if (status === 409) {
    showResult('Sorry, "' + book.title + '" is out of stock.', false);
  } else {
    showResult('The buy did not go through: ' + ((data && data.message) || 'no answer') + '.', false);
  }
  await loadBooks();
}

function selectTopic(topic) {
  state.topic = topic;
  markTopic();
  const url = new URL(window.location.href);
  if (topic) url.searchParams.set('topic', topic); else url.searchParams.delete('topic');
  window.history.replaceState(null, '', url);
  loadBooks();
}

function nodeRow(node) {
  const row = el('tr', node.alive ? 'alive' : 'dead');
  row.id = 'node-' + node.id;
  const alive = el('td');
  alive.append(el('span', 'dot ' + (node.alive ? 'alive' : 'dead')),
               document.createTextNode(node.alive ? ' yes' : ' no'));
  row.append(el('td', 'id', node.id), el('td', 'service', node.service),
             el('td', 'role-' + (node.role || 'none'), node.role || '-'),
             el('td', 'num', node.epoch ?? '-'), el('td', 'num', node.seq ?? '-'),
             el('td', 'num', node.lag ?? '-'), alive);
  return row;
}

async function refreshCluster() {
  const { status, data } = await call('GET', '/cluster');
  const badge = document.getElementById('cluster-state');
  const rows = document.getElementById('node-rows');
  const cache = document.getElementById('cache');
  if (status !== 200) {
    badge.textContent = 'broker unreachable';
    badge.className = 'state down';
    return;
  }
  const nodes = (data.nodes || []).slice().sort((a, b) =>
    a.service.localeCompare(b.service) || a.id.localeCompare(b.id));
  const alive = nodes.filter((n) => n.alive).length;
  badge.textContent = alive + ' of ' + nodes.length + ' nodes alive';
  badge.className = 'state ' + (alive === nodes.length ? 'up' : 'down');
  rows.replaceChildren(...nodes.map(nodeRow));
  if (data.cache && typeof data.cache.hits === 'number') {
    const hits = data.cache.hits;
    const misses = data.cache.misses || 0;
    const rate = hits + misses ? Math.round((100 * hits) / (hits + misses)) : 0;
    cache.textContent = 'Cache: ' + plural(hits, 'hit') + ', ' + plural(misses, 'miss') +
                        ' (' + rate + '% hit rate).';
  } else {
    cache.textContent = '';
  }
}

function plural(n, word) {
  return n + ' ' + word + (n === 1 ? '' : word.endsWith('s') ? 'es' : 's');
}

function start() {
  const given = new URL(window.location.href).searchParams.get('topic');
  if (given !== null) state.topic = given;
  document.getElementById('search').addEventListener('submit', (event) => {
    event.preventDefault();
    selectTopic(document.getElementById('topic').value.trim());
  });
  for (const chip of document.querySelectorAll('.chip')) {
    chip.addEventListener('click', () => selectTopic(chip.dataset.topic));
  }
  markTopic();
  loadBooks();
  refreshCluster();
  setInterval(refreshCluster, 1000);
}

start();
