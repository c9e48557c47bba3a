/*
  The pledge choice form (templates/checkout/_choice.html), made live: the shipping countries follow the chosen
  reward, and the total follows every change, without a reload. Without this script the form still works: its
  "Update total" button asks the server for the same figures. The server checks everything again on submit.
*/
(function () {
  "use strict";

  function parseJson(text, fallback) {
    try {
      return JSON.parse(text || "");
    } catch (error) {
      return fallback;
    }
  }

  // Money typed in major units ("1,499.50") as integer minor units, exactly like service/pages/money_input.py:
  // digits only, no more decimals than the currency has; null when it cannot be read.
  function minorUnits(text, digits) {
    var cleaned = (text || "").normalize("NFKC").replace(/[,\s'\u2019_]/g, "");
    if (cleaned === "") {
      return 0;
    }
    var match = /^(\d*)(?:\.(\d*))?$/.exec(cleaned);
    if (!match || !(match[1] || match[2])) {
      return null;
    }
    var whole = match[1] || "0";
    var fraction = match[2] || "";
    if (fraction.length > digits || whole.replace(/^0+/, "").length > 13) {
      return null;
    }
    while (fraction.length < digits) {
      fraction += "0";
    }
    return parseInt(whole + fraction, 10);
  }

  function setUp(form) {
    var data = form.dataset;
    var tiers = parseJson(data.tiers, {});
    var countries = parseJson(data.countries, []);
    // Typed with `digits` decimals, kept in minor units of `scale` digits (Stripe's): HUF is typed 0, kept 2.
    var digits = parseInt(data.digits || "2", 10);
    var scale = parseInt(data.scale || String(digits), 10);
    var step = Math.pow(10, scale - digits);
    var formatter = new Intl.NumberFormat(data.locale || "en", {
      style: "currency",
      currency: data.currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    var select = form.querySelector("select[name=shipping_country]");
    var countryField = form.querySelector("[data-country-field]");
    var bonusInput = form.querySelector("input[name=bonus]");

    function money(minor) {
      return formatter.format(minor / Math.pow(10, scale));
    }

    function feeText(fee) {
      return fee === 0 ? data.msgFree : "+" + money(fee);
    }

    function chosenTier() {
      var radio = form.querySelector("input[name=tier]:checked");
      return radio ? tiers[radio.value] || null : null;
    }

    function option(value, label) {
      var element = document.createElement("option");
      element.value = value;
      element.textContent = label;
      return element;
    }

    function rebuildCountries(tier) {
      if (!select || !tier || !tier.ships) {
        return;
      }
      var previous = select.value;
      var fees = tier.fees;
      var listed = [];
      var others = [];
      countries.forEach(function (pair) {
        if (Object.prototype.hasOwnProperty.call(fees, pair[0])) {
          listed.push(option(pair[0], pair[1] + " · " + feeText(fees[pair[0]])));
        } else if (Object.prototype.hasOwnProperty.call(fees, "*")) {
          others.push(option(pair[0], pair[1]));
        }
      });
      var children = [option("", data.msgChooseCountry)].concat(listed);
      if (others.length) {
        var group = document.createElement("optgroup");
        group.label = data.msgElsewhere.replace("{fee}", feeText(fees["*"]));
        others.forEach(function (element) {
          group.appendChild(element);
        });
        children.push(group);
      }
      select.replaceChildren.apply(select, children);
      var stillThere = Array.prototype.some.call(select.options, function (element) {
        return element.value === previous;
      });
      select.value = stillThere ? previous : "";
    }

    function show(name, text) {
      var cell = form.querySelector('[data-summary="' + name + '"]');
      if (cell) {
        cell.textContent = text;
      }
    }

    function feeTo(fees, country) {
      if (Object.prototype.hasOwnProperty.call(fees, country)) {
        return fees[country];
      }
      if (Object.prototype.hasOwnProperty.call(fees, "*")) {
        return fees["*"];
      }
      return null;
    }

    // The add-ons' price × quantity, and their own fees to the country (null: not known yet, or not shipped there).
    function addOns(country) {
      var amount = 0;
      var fee = 0;
      var any = false;
      form.querySelectorAll("input[data-addon-price]").forEach(function (input) {
        var quantity = /^\d{1,3}$/.test(input.value) ? parseInt(input.value, 10) : 0;
        if (input.disabled || quantity <= 0) {
          return;
        }
        any = true;
        amount += quantity * parseInt(input.dataset.addonPrice, 10);
        var fees = parseJson(input.dataset.addonFees, {});
        if (fee === null || Object.keys(fees).length === 0) {
          return;
        }
        var each = country ? feeTo(fees, country) : null;
        fee = each === null ? null : fee + quantity * each;
      });
      return { any: any, amount: amount, fee: fee };
    }

    // Shipped by weight (campaigns/pledges/shipping.py): the fee of the first bracket the reward's and the add-ons'
    // total weight fits in, for the country's row or "*"; null when there is none (the server says why).
    function weightFee(tier, country) {
      var brackets = tier.weights[country] || tier.weights["*"];
      if (!brackets) {
        return null;
      }
      var grams = tier.grams;
      form.querySelectorAll("input[data-addon-price]").forEach(function (input) {
        var quantity = /^\d{1,3}$/.test(input.value) ? parseInt(input.value, 10) : 0;
        if (!input.disabled && quantity > 0) {
          grams += quantity * (tier.addOnGrams[input.name.slice("addon.".length)] || 0);
        }
      });
      for (var i = 0; i < brackets.length; i += 1) {
        if (grams <= brackets[i][0]) {
          return brackets[i][1];
        }
      }
      return null;
    }

    function updateSummary(tier) {
      var pending = "—";
      var country = select ? select.value : "";
      var extra = addOns(country);
      var price = tier ? tier.price : null;
      var fee = null;
      if (tier && !tier.ships) {
        fee = 0;
      } else if (tier && country) {
        fee = feeTo(tier.fees, country);
      }
      if (!tier && extra.any) {
        var radio = form.querySelector("input[name=tier]:checked");
        price = radio ? 0 : null;
        fee = country ? 0 : null;
      }
      if (fee !== null) {
        fee = extra.fee === null ? null : fee + extra.fee;
      }
      if (tier && tier.weights && (tier.ships || extra.any)) {
        fee = country ? weightFee(tier, country) : null;
      }
      var typed = bonusInput ? minorUnits(bonusInput.value, digits) : 0;
      var bonus = typed === null ? null : typed * step;
      show("price", price === null ? pending : money(price));
      show("shipping", fee === null ? data.msgPending : money(fee));
      show("bonus", bonus === null ? pending : money(bonus));
      show("add_ons", money(extra.amount));
      var addOnsRow = form.querySelector('[data-summary-row="add_ons"]');
      if (addOnsRow) {
        addOnsRow.hidden = !extra.any;
      }
      var complete = price !== null && fee !== null && bonus !== null;
      show("total", complete ? money(price + extra.amount + fee + bonus) : pending);
      var shippingRow = form.querySelector('[data-summary-row="shipping"]');
      if (shippingRow) {
        shippingRow.hidden = Boolean(tier) && !tier.ships;
      }
    }

    function refresh(tierChanged) {
      var tier = chosenTier();
      if (tierChanged) {
        rebuildCountries(tier);
      }
      if (countryField) {
        countryField.hidden = Boolean(tier) && !tier.ships;
      }
      updateSummary(tier);
    }

    form.querySelectorAll("[data-no-js]").forEach(function (element) {
      element.hidden = true;
    });
    form.addEventListener("change", function (event) {
      refresh(event.target.name === "tier");
    });
    if (bonusInput) {
      bonusInput.addEventListener("input", function () {
        refresh(false);
      });
    }
    form.querySelectorAll("input[data-addon-price]").forEach(function (input) {
      input.addEventListener("input", function () {
        refresh(false);
      });
    });
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (form.dataset.sending === "1") {
        event.preventDefault();
        return;
      }
      form.dataset.sending = "1";
      if (button) {
        button.setAttribute("aria-disabled", "true");
      }
    });
    // Coming back with the browser's Back button shows the page as it was left: make it usable again.
    window.addEventListener("pageshow", function () {
      form.dataset.sending = "";
      form.querySelectorAll("[aria-disabled]").forEach(function (element) {
        element.removeAttribute("aria-disabled");
      });
    });
    refresh(true);
  }

  document.querySelectorAll("form[data-checkout]").forEach(setUp);
})();
